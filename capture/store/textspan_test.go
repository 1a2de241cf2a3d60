package store

import (
	"strings"
	"testing"
)

func TestSearchTextSpanOrCopy(t *testing.T) {
	raw := []byte("Subject: x\r\n\r\nHello World, plain.\r\n")
	for _, c := range []struct {
		src      string
		wantSpan bool
	}{
		{"Hello World, plain.\r\n", true}, // the whole body
		{"World, plain", true},            // a part inside
		{"Hello World, changed", false},   // decoded: not in raw
		{"Héllo", false},                  // non-ASCII: LIKE would not fold it
		{"", false},
	} {
		text, off, n := searchText(raw, c.src)
		if c.wantSpan {
			if off < 0 || string(raw[off:off+n]) != c.src || text != "" {
				t.Errorf("%q: got copy %q (off %d), want a span", c.src, text, off)
			}
		} else if off != -1 || text != strings.ToLower(c.src) {
			t.Errorf("%q: got off %d text %q, want the lower-cased copy", c.src, off, text)
		}
	}
	long := strings.Repeat("abcdefgh", 1000)
	for _, i := range []int{0, 7, 8, 100, len(long) - 1} {
		s := long[:i] + "\x80" + long[i:]
		if isASCII(s) {
			t.Errorf("isASCII missed a high byte at %d", i)
		}
	}
	if !isASCII(long) {
		t.Error("isASCII refused ASCII")
	}
}
