// Package skipsummary holds no code: its TestMain prints, at the end of
// `go test ./...`, which groups of tests were skipped on this machine and
// the one command that enables each (see internal/need.Summarize). Its
// import path sorts last in the module, so go test prints its result
// last; TestSortsLast fails when a new package would sort after it.
package skipsummary
