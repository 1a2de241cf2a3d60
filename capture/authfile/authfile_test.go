package authfile_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

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

// TestParallelGuessesQueue shows that guessing one user's password from
// many connections at once is no faster than one after another: four
// parallel failures cannot all be answered before the four delays (100,
// 200, 400 and 800 ms) have passed one after the other. Run side by side
// they would all be answered within the longest, 800 ms. (A lower bound:
// a busy machine only makes it longer.)
func TestParallelGuessesQueue(t *testing.T) {
	h, _ := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	f, err := authfile.Parse([]byte("bob:"+string(h)+"\n"), "f")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	start := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f.Check(ctx, "bob", "wrong"); err == nil {
				t.Error("wrong password accepted")
			}
		}()
	}
	wg.Wait()
	if took := time.Since(start); took < 1500*time.Millisecond {
		t.Fatalf("four parallel failures answered in %v: they ran side by side", took)
	}
	if err := f.Check(ctx, "bob", "s3cret"); err != nil {
		t.Fatalf("good password after failures: %v", err)
	}
}
