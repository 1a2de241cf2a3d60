// Package authfile checks credentials against an htpasswd-style file of
// bcrypt hashes ("user:$2y$…", one per line, # comments). SMTP AUTH, POP3
// and IMAP logins and HTTP basic auth all use it.
//
// It answers the same way, in about the same time, for an unknown user and
// a wrong password, so neither the reply nor the timing tells which users
// exist; and it slows repeated failures for one user down.
package authfile

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// ErrBadCredentials is the one error for every failed check.
var ErrBadCredentials = errors.New("authfile: invalid credentials")

// Failure slow-down: each consecutive failure for a user doubles the delay
// before the answer, from minDelay up to maxDelay. A success resets it.
const (
	minDelay = 100 * time.Millisecond
	maxDelay = 5 * time.Second
)

// File is a loaded credentials file. It is safe for concurrent use.
type File struct {
	users map[string][]byte
	dummy []byte // compared against for unknown users, to even out timing

	mu    sync.Mutex
	state map[string]*userState
}

// userState serialises the attempts on one user name: parallel guesses
// queue behind each other's slow-down instead of running side by side.
type userState struct {
	turn     chan struct{} // a one-slot semaphore
	failures int
	last     time.Time
}

// maxTracked bounds the per-user state under a flood of invented names.
const maxTracked = 10000

func (f *File) userState(user string) *userState {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, ok := f.state[user]
	if !ok {
		if len(f.state) >= maxTracked {
			// Forget the quietest first: those without failures, then
			// those whose last failure is oldest.
			cut := time.Now().Add(-10 * time.Minute)
			for name, old := range f.state {
				if old.failures == 0 || old.last.Before(cut) {
					delete(f.state, name)
				}
			}
		}
		st = &userState{turn: make(chan struct{}, 1)}
		if len(f.state) < maxTracked {
			f.state[user] = st
		}
	}
	return st
}

// Load reads an htpasswd-style file. Only bcrypt hashes are accepted.
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read credentials file: %w", err)
	}
	return Parse(data, path)
}

// Parse reads credentials from data; name is used in errors.
func Parse(data []byte, name string) (*File, error) {
	f := &File{users: map[string][]byte{}, state: map[string]*userState{}}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		user, hash, ok := strings.Cut(line, ":")
		if !ok || user == "" {
			return nil, fmt.Errorf("%s:%d: want user:bcrypt-hash", name, n)
		}
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			return nil, fmt.Errorf("%s:%d: user %q: not a bcrypt hash (make one with `htpasswd -nbB user pass`)", name, n, user)
		}
		f.users[strings.ToLower(user)] = []byte(hash)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(f.users) == 0 {
		return nil, fmt.Errorf("%s: no users", name)
	}
	for _, h := range f.users {
		// Same cost as a real entry, so an unknown user costs as much.
		cost, _ := bcrypt.Cost(h)
		f.dummy, _ = bcrypt.GenerateFromPassword([]byte("no such user"), cost)
		break
	}
	return f, nil
}

// Check reports whether pass is user's password. User names are compared
// case-insensitively, as mailbox addresses are. Attempts on one user name
// are answered one at a time, each failure slower than the last.
func (f *File) Check(ctx context.Context, user, pass string) error {
	user = strings.ToLower(strings.TrimSpace(user))
	st := f.userState(user)
	select {
	case st.turn <- struct{}{}:
	case <-ctx.Done():
		return ErrBadCredentials
	}
	defer func() { <-st.turn }()
	hash, ok := f.users[user]
	if !ok {
		hash = f.dummy
	}
	err := bcrypt.CompareHashAndPassword(hash, []byte(pass))
	f.mu.Lock()
	if ok && err == nil {
		st.failures = 0
		f.mu.Unlock()
		return nil
	}
	n := st.failures
	st.failures++
	st.last = time.Now()
	f.mu.Unlock()
	delay := minDelay << min(n, 6)
	if delay > maxDelay {
		delay = maxDelay
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
	return ErrBadCredentials
}
