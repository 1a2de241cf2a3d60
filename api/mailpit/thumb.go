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
// encodes it as JPEG on white (for transparent images). What is not an
// image it can decode (or is too large) gives a blank thumbnail.
func thumbnail(r io.Reader) ([]byte, error) {
	dst := image.NewRGBA(image.Rect(0, 0, thumbWidth, thumbHeight))
	draw.Draw(dst, dst.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
	if src, err := decodeBounded(r); err == nil {
		cover(dst, src)
	}
	var out bytes.Buffer
	if err := jpeg.Encode(&out, dst, &jpeg.Options{Quality: 80}); err != nil {
		return nil, fmt.Errorf("encode thumbnail: %w", err)
	}
	return out.Bytes(), nil
}

// decodeBounded decodes an image whose declared size is reasonable.
func decodeBounded(r io.Reader) (image.Image, error) {
	var buf bytes.Buffer
	cfg, _, err := image.DecodeConfig(io.TeeReader(r, &buf))
	if err != nil {
		return nil, err
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width*cfg.Height > maxThumbPixels {
		return nil, errors.New("image too large")
	}
	img, _, err := image.Decode(io.MultiReader(&buf, r))
	return img, err
}

// cover draws src over dst scaled to cover it, centred.
func cover(dst *image.RGBA, src image.Image) {
	b := src.Bounds()
	// Scale so the image covers the thumbnail, then crop the centre.
	scale := max(float64(thumbWidth)/float64(b.Dx()), float64(thumbHeight)/float64(b.Dy()))
	w, h := max(int(float64(b.Dx())*scale+0.5), thumbWidth), max(int(float64(b.Dy())*scale+0.5), thumbHeight)
	off := image.Pt((w-thumbWidth)/2, (h-thumbHeight)/2)
	draw.ApproxBiLinear.Scale(dst, image.Rect(-off.X, -off.Y, w-off.X, h-off.Y), src, b, draw.Over, nil)
}
