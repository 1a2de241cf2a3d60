package mailpit

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	_ "image/gif" // decoders for thumbnails
	"image/jpeg"
	_ "image/png"
	"io"

	"golang.org/x/image/draw"
	_ "golang.org/x/image/webp"
)

// Thumbnail size, as Mailpit's.
const (
	thumbWidth  = 180
	thumbHeight = 120
	// maxThumbPixels refuses images whose decoding would take too much
	// memory (a small file can declare a huge canvas).
	maxThumbPixels = 40 << 20
)

// thumbnail scales an image to cover 180×120, crops the middle, and
// encodes it as JPEG on white (for transparent images).
func thumbnail(r io.Reader) ([]byte, error) {
	var buf bytes.Buffer
	tee := io.TeeReader(r, &buf)
	cfg, _, err := image.DecodeConfig(tee)
	if err != nil {
		return nil, errors.New("image could not be decoded")
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width*cfg.Height > maxThumbPixels {
		return nil, fmt.Errorf("image too large to thumbnail (%d×%d)", cfg.Width, cfg.Height)
	}
	src, _, err := image.Decode(io.MultiReader(&buf, r))
	if err != nil {
		return nil, errors.New("image could not be decoded")
	}
	b := src.Bounds()
	// Scale so the image covers the thumbnail, then crop the centre.
	scale := max(float64(thumbWidth)/float64(b.Dx()), float64(thumbHeight)/float64(b.Dy()))
	w, h := max(int(float64(b.Dx())*scale+0.5), thumbWidth), max(int(float64(b.Dy())*scale+0.5), thumbHeight)
	dst := image.NewRGBA(image.Rect(0, 0, thumbWidth, thumbHeight))
	draw.Draw(dst, dst.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
	off := image.Pt((w-thumbWidth)/2, (h-thumbHeight)/2)
	draw.ApproxBiLinear.Scale(dst, image.Rect(-off.X, -off.Y, w-off.X, h-off.Y), src, b, draw.Over, nil)
	var out bytes.Buffer
	if err := jpeg.Encode(&out, dst, &jpeg.Options{Quality: 80}); err != nil {
		return nil, fmt.Errorf("encode thumbnail: %w", err)
	}
	return out.Bytes(), nil
}
