package faults

import (
	"errors"
	"strings"
)

// glob is a compiled address pattern: '*' any run, '?' one character,
// '[abc]', '[a-z]', '[!x]' a class; matching is case-insensitive. A
// hand-written matcher, not a regexp: it runs for every rule at every
// stage, so it must be cheap.
type glob struct {
	pat string // lower-cased; "" matches anything
	any bool
}

func compileGlob(p string) (glob, error) {
	if p == "" {
		return glob{any: true}, nil
	}
	if len(p) > 512 {
		return glob{}, errors.New("glob longer than 512 bytes")
	}
	p = strings.ToLower(p)
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '\\':
			if i+1 == len(p) {
				return glob{}, errors.New("glob ends with a lone backslash")
			}
			i++
		case '[':
			j, err := classEnd(p, i)
			if err != nil {
				return glob{}, err
			}
			i = j
		case ']':
			return glob{}, errors.New("unmatched ']' in glob")
		}
	}
	return glob{pat: p, any: p == "*"}, nil
}

// classEnd returns the index of the ']' closing the class at p[i].
func classEnd(p string, i int) (int, error) {
	j := i + 1
	if j < len(p) && (p[j] == '!' || p[j] == '^') {
		j++
	}
	if j < len(p) && p[j] == ']' { // "[]x]": a leading ']' is literal
		j++
	}
	for ; j < len(p); j++ {
		if p[j] == ']' {
			return j, nil
		}
	}
	return 0, errors.New("unclosed '[' in glob")
}

// match reports whether s (any case) matches.
func (g glob) match(s string) bool {
	if g.any {
		return true
	}
	return matchFrom(g.pat, lowerASCII(s))
}

func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}

// matchFrom is the classic wildcard match with one backtrack point: on a
// mismatch after a '*', the star takes one more byte.
func matchFrom(p, s string) bool {
	pi, si := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		if pi < len(p) {
			switch c := p[pi]; c {
			case '*':
				star, mark = pi, si
				pi++
				continue
			case '?':
				pi++
				si++
				continue
			case '[':
				end, _ := classEnd(p, pi)
				if classMatch(p[pi+1:end], s[si]) {
					pi = end + 1
					si++
					continue
				}
			case '\\':
				if p[pi+1] == s[si] {
					pi += 2
					si++
					continue
				}
			default:
				if c == s[si] {
					pi++
					si++
					continue
				}
			}
		}
		if star < 0 {
			return false
		}
		mark++
		pi, si = star+1, mark
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

func classMatch(cls string, b byte) bool {
	neg := false
	if len(cls) > 0 && (cls[0] == '!' || cls[0] == '^') {
		neg, cls = true, cls[1:]
	}
	in := false
	for i := 0; i < len(cls); i++ {
		lo := cls[i]
		hi := lo
		if i+2 < len(cls) && cls[i+1] == '-' {
			hi = cls[i+2]
			i += 2
		}
		if lo <= b && b <= hi {
			in = true
		}
	}
	return in != neg
}
