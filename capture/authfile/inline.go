package authfile

import (
	"fmt"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// FromPairs builds credentials from inline "user:pass user2:pass2" pairs
// (space-separated, plain-text passwords), the form of Mailpit's
// MP_SMTP_AUTH, MP_UI_AUTH and MP_POP3_AUTH. The passwords are hashed at
// once, so checks cost and behave as they do for a file. name is used in
// errors and never shows a password.
func FromPairs(pairs, name string) (*File, error) {
	var b strings.Builder
	for i, pair := range strings.Fields(pairs) {
		user, pass, ok := strings.Cut(pair, ":")
		if !ok || user == "" || pass == "" {
			return nil, fmt.Errorf("%s: pair %d: want user:password", name, i+1)
		}
		// The lowest cost: these are test credentials given in the clear,
		// and start-up should stay fast with many of them.
		hash, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
		if err != nil {
			return nil, fmt.Errorf("%s: user %q: %w", name, user, err)
		}
		fmt.Fprintf(&b, "%s:%s\n", user, hash)
	}
	if b.Len() == 0 {
		return nil, fmt.Errorf("%s: no users", name)
	}
	return Parse([]byte(b.String()), name)
}
