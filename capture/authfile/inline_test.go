package authfile

import (
	"context"
	"strings"
	"testing"
)

func TestFromPairs(t *testing.T) {
	f, err := FromPairs(" alice:secret  bob:p:w:colon ", "MP_SMTP_AUTH")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := f.Check(ctx, "alice", "secret"); err != nil {
		t.Errorf("alice: %v", err)
	}
	if err := f.Check(ctx, "bob", "p:w:colon"); err != nil {
		t.Errorf("a password may hold colons: %v", err)
	}
	if err := f.Check(ctx, "alice", "wrong"); err == nil {
		t.Error("wrong password accepted")
	}
	for _, bad := range []string{"", "   ", "nopass", "user:", ":pass"} {
		_, err := FromPairs(bad, "MP_SMTP_AUTH")
		if err == nil || !strings.HasPrefix(err.Error(), "MP_SMTP_AUTH") || strings.Contains(err.Error(), "pass ") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
