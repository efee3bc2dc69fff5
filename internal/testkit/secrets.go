package testkit

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// SecretForms are the spellings under which a key could leak into a file, a header or a log
// line: its bytes, hex in either case, and base64 with and without padding, standard and URL.
func SecretForms(secret []byte) [][]byte {
	h := hex.EncodeToString(secret)
	return [][]byte{secret, []byte(h), bytes.ToUpper([]byte(h)),
		[]byte(base64.StdEncoding.EncodeToString(secret)), []byte(base64.RawStdEncoding.EncodeToString(secret)),
		[]byte(base64.URLEncoding.EncodeToString(secret)), []byte(base64.RawURLEncoding.EncodeToString(secret))}
}

// CheckNoSecret fails tb if data, read from where, holds any of secrets in any of its forms.
func CheckNoSecret(tb testing.TB, where string, data []byte, secrets ...[]byte) {
	tb.Helper()
	for _, s := range secrets {
		for _, f := range SecretForms(s) {
			if bytes.Contains(data, f) {
				tb.Errorf("%s holds a key (%q)", where, f)
			}
		}
	}
}

// CheckNoSecretInDir fails tb if any file under dir holds one of secrets (CheckNoSecret), or
// if fewer than minFiles files were read: a check of an empty or wrong folder proves nothing.
func CheckNoSecretInDir(tb testing.TB, dir string, minFiles int, secrets ...[]byte) {
	tb.Helper()
	files := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		CheckNoSecret(tb, path, data, secrets...)
		return nil
	})
	if err != nil || files < minFiles {
		tb.Fatalf("read %d files under %s, want at least %d: %v", files, dir, minFiles, err)
	}
}
