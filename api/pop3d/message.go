package pop3d

import (
	"bytes"
	"io"
)

// writeMessage writes raw as POP3 sends it: every line ended by CRLF (a
// bare LF becomes CRLF, and a last line without an ending gets one). With
// stuff set, a line starting with "." gets one more "." in front (RFC 1939
// byte-stuffing); the terminating ".CRLF" is not written. bodyLines < 0
// writes the whole message; otherwise the header, the blank line after it,
// and at most bodyLines lines of the body (TOP).
//
// The size a message has in STAT and LIST is what this writes with stuff
// unset and bodyLines < 0, so the two never disagree.
func writeMessage(w io.Writer, raw []byte, bodyLines int, stuff bool) (int64, error) {
	var n int64
	write := func(b []byte) error {
		m, err := w.Write(b)
		n += int64(m)
		return err
	}
	inHeader, body := true, 0
	for len(raw) > 0 {
		if !inHeader && bodyLines >= 0 && body >= bodyLines {
			break
		}
		var line []byte
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line, raw = raw[:i], raw[i+1:]
		} else {
			line, raw = raw, nil
		}
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if stuff && len(line) > 0 && line[0] == '.' {
			if err := write([]byte{'.'}); err != nil {
				return n, err
			}
		}
		if err := write(line); err != nil {
			return n, err
		}
		if err := write(crlf); err != nil {
			return n, err
		}
		if inHeader {
			inHeader = len(line) > 0
		} else {
			body++
		}
	}
	return n, nil
}

var crlf = []byte("\r\n")

// messageSize is the number of octets RETR sends for raw, before
// byte-stuffing and without the terminating line.
func messageSize(raw []byte) int64 {
	n, _ := writeMessage(io.Discard, raw, -1, false)
	return n
}
