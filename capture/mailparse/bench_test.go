package mailparse

import (
	"strings"
	"testing"
)

// BenchmarkParse parses what ingest parses: a plain message of 1 KB and
// one of 100 KB, every message once.
func BenchmarkParse(b *testing.B) {
	for _, size := range []int{1 << 10, 100 << 10} {
		var sb strings.Builder
		sb.WriteString("From: Bench <bench@example.com>\r\nTo: sink@example.com\r\nSubject: load test\r\nMessage-ID: <x@bench>\r\n\r\n")
		for sb.Len() < size {
			sb.WriteString("The quick brown fox jumps over the lazy dog 0123456789 ABCDEFGHIJ.\r\n")
		}
		raw := []byte(sb.String())
		b.Run(itoaKB(size), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				Parse(raw)
			}
		})
	}
}

func itoaKB(n int) string {
	if n >= 100<<10 {
		return "size=100KB"
	}
	return "size=1KB"
}
