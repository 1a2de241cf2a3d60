package main

import "strings"

// ruleFlag is a repeatable flag whose values may hold commas (tag rules);
// from the environment it takes one value a line.
type ruleFlag struct{ v *[]string }

func (r ruleFlag) String() string {
	if r.v == nil {
		return ""
	}
	return strings.Join(*r.v, "\n")
}

func (r ruleFlag) Set(s string) error {
	for _, p := range strings.Split(s, "\n") {
		if p = strings.TrimSpace(p); p != "" {
			*r.v = append(*r.v, p)
		}
	}
	return nil
}
