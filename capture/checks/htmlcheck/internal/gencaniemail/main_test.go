package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/mailsandbox/mailsandbox/internal/need"
)

// src is the caniemail folder beside the checkout (../shared).
const src = "../../../../../../shared/caniemail"

// TestCommittedDataIsFresh: the committed caniemail.json is what go
// generate makes from ../shared/caniemail now, so the two cannot drift.
func TestCommittedDataIsFresh(t *testing.T) {
	if _, err := os.Stat(filepath.Join(src, "_features")); err != nil {
		need.Skip(t, need.CanIEmail, err.Error())
	}
	d, err := convert(src)
	if err != nil {
		t.Fatal(err)
	}
	got, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("../../caniemail.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(append(got, '\n'), want) {
		t.Error("caniemail.json differs from what go generate makes: run go generate ./capture/checks/htmlcheck")
	}
}

func TestParseObjectTolerates(t *testing.T) {
	n, err := parseObject("{\n a: {\n\t\"1.0\": \"a #1 #2\",\n \"2\":\"y\",\n },\n b-c: { x: { \"v\": \"n\" } },\n}")
	if err != nil {
		t.Fatal(err)
	}
	st := flattenStats(n)
	if len(st) != 1 || st[0].Family != "b-c" || st[0].Support != "n" {
		t.Errorf("stats %+v", st)
	}
	f, err := parseFeature("x", "---\ntitle: \"T\"\ncategory: css\nstats: {\n  gmail: {\n    ios: {\n      \"2019\": \"a #1\",\n    },\n  },\n}\nnotes_by_num: {\n  \"1\": \"see https://a.example/x---y\",\n}\n---\nbody --- text\n")
	if err != nil || f.Title != "T" || len(f.Stats) != 1 || f.Stats[0].Notes[0] != "1" || f.NotesByNum["1"] == "" {
		t.Errorf("%+v %v", f, err)
	}
}
