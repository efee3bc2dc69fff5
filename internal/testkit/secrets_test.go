package testkit

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// recorder is a testing.TB that keeps what a check reports instead of failing.
type recorder struct {
	testing.TB
	errors, fatals []string
}

func (r *recorder) Helper()                   {}
func (r *recorder) Errorf(f string, a ...any) { r.errors = append(r.errors, fmt.Sprintf(f, a...)) }
func (r *recorder) Fatalf(f string, a ...any) { r.fatals = append(r.fatals, fmt.Sprintf(f, a...)) }

// TestCheckNoSecretInDir: every spelling of a key in any file is found, a folder without it
// passes, and a folder with too few files fails.
func TestCheckNoSecretInDir(t *testing.T) {
	key := []byte{0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}
	for i, form := range SecretForms(key) {
		dir := t.TempDir()
		for j, body := range []string{"clear", "#EXT-X-KEY:URI=\"x\"\n" + string(form) + "\n", "more"} {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprint(j)), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		r := &recorder{TB: t}
		CheckNoSecretInDir(r, dir, 3, key)
		if len(r.errors) == 0 || len(r.fatals) != 0 {
			t.Errorf("form %d (%q): errors %q, fatals %q", i, form, r.errors, r.fatals)
		}
	}
	dir := t.TempDir()
	other := base64.StdEncoding.EncodeToString([]byte("not the key at all"))
	if err := os.WriteFile(filepath.Join(dir, "a"), []byte(other), 0o644); err != nil {
		t.Fatal(err)
	}
	r := &recorder{TB: t}
	CheckNoSecretInDir(r, dir, 1, key)
	if len(r.errors)+len(r.fatals) != 0 {
		t.Errorf("clean folder: errors %q, fatals %q", r.errors, r.fatals)
	}
	CheckNoSecretInDir(r, dir, 2, key)
	if len(r.fatals) != 1 {
		t.Errorf("too few files: fatals %q", r.fatals)
	}
}
