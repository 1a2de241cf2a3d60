package main

import (
	"fmt"
	"strings"
)

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

// mailpitTagArgs reads MP_TAG as Mailpit's --tag: NAME=QUERY terms
// separated by spaces, a term's spaces protected by double quotes
// (`github=from:github.com "Sign up"="subject:welcome aboard"`). It
// returns the rules one a line, as --tag reads them from the environment.
func mailpitTagArgs(v string) (string, error) {
	var rules []string
	var cur strings.Builder
	quoted := false
	for _, r := range v {
		switch {
		case r == '"':
			quoted = !quoted
		case !quoted && (r == ' ' || r == '\t' || r == '\n'):
			if cur.Len() > 0 {
				rules = append(rules, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteRune(r)
		}
	}
	if quoted {
		return "", fmt.Errorf("unbalanced double quote")
	}
	if cur.Len() > 0 {
		rules = append(rules, cur.String())
	}
	return strings.Join(rules, "\n"), nil
}
