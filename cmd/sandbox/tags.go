package sandbox

import (
	"strings"

	"github.com/mailsandbox/mailsandbox/autotag"
)

// TagsConfig is where automatic tags come from (package autotag).
type TagsConfig struct {
	// Rules are NAME=QUERY tag rules (--tag), in order.
	Rules []string
	// Username tags mail with its SMTP AUTH user (--tag-username).
	Username bool
	// Disable lists automatic sources to turn off (--tag-disable):
	// "x-tags", "plus-addresses".
	Disable []string
}

// tagger compiles the tag settings; errors name the flag and the rule.
func (t TagsConfig) tagger() (*autotag.Tagger, error) {
	opts := autotag.Options{Username: t.Username}
	for _, d := range t.Disable {
		switch strings.ToLower(strings.TrimSpace(d)) {
		case "x-tags":
			opts.NoXTags = true
		case "plus-addresses":
			opts.NoPlusAddresses = true
		case "":
		default:
			return nil, bad("tag-disable", "unknown source %q (want x-tags or plus-addresses)", d)
		}
	}
	for _, r := range t.Rules {
		rule, err := autotag.ParseRule(r)
		if err != nil {
			return nil, bad("tag", "%v", err)
		}
		opts.Rules = append(opts.Rules, rule)
	}
	return autotag.New(opts), nil
}
