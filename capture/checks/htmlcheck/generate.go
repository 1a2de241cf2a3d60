package htmlcheck

// The caniemail tables live beside the checkout (../shared/caniemail); the
// generated JSON and the licence are committed so a build needs neither.
//go:generate go run ./internal/gencaniemail -src ../../../../shared/caniemail -out caniemail.json -license caniemail-LICENSE
