package main

import "strings"

// faultFlag is the repeatable --fault. Its values hold commas, so unlike
// listFlag it does not split on them; from MAILSANDBOX_FAULT it takes one
// rule per line.
type faultFlag struct{ v *[]string }

func (f faultFlag) String() string {
	if f.v == nil {
		return ""
	}
	return strings.Join(*f.v, "\n")
}

func (f faultFlag) Set(s string) error {
	for _, p := range strings.Split(s, "\n") {
		if p = strings.TrimSpace(p); p != "" {
			*f.v = append(*f.v, p)
		}
	}
	return nil
}
