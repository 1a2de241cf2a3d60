package authfile_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/mailsandbox/mailsandbox/capture/authfile"
	"golang.org/x/crypto/bcrypt"
)

func TestCheck(t *testing.T) {
	h, _ := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	path := filepath.Join(t.TempDir(), "users")
	os.WriteFile(path, []byte("# team\nBob@Example.com:"+string(h)+"\n"), 0o600)
	f, err := authfile.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := f.Check(ctx, "bob@example.com", "s3cret"); err != nil {
		t.Fatalf("good password refused: %v", err)
	}
	for _, c := range [][2]string{{"bob@example.com", "wrong"}, {"nobody@example.com", "s3cret"}, {"", ""}} {
		if err := f.Check(ctx, c[0], c[1]); !errors.Is(err, authfile.ErrBadCredentials) {
			t.Errorf("%q/%q: %v", c[0], c[1], err)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, bad := range []string{"", "nocolon\n", "bob:plaintext\n", ":$2y$10$abc\n"} {
		if _, err := authfile.Parse([]byte(bad), "f"); err == nil {
			t.Errorf("%q: accepted", bad)
		}
	}
}
