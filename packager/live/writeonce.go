package live

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ErrPublished is returned when a segment's name already holds other bytes: what was
// published under a name stays (segments are served immutable for a year), the new bytes are
// refused.
var ErrPublished = errors.New("already published with other bytes; not overwritten")

// writeOnce publishes data at path unless path exists. The bytes go to a temporary file that
// is then hard-linked to path: the link either creates the name, whole, or fails because the
// name exists — never replaces it, unlike a rename. An existing file with the same bytes is
// not an error (a segment stored twice by its one writer).
func writeOnce(path string, data []byte) error {
	if err := sameAsPublished(path, data); !errors.Is(err, os.ErrNotExist) {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err != nil {
		return err
	}
	if err := os.Link(tmp.Name(), path); errors.Is(err, os.ErrExist) {
		return sameAsPublished(path, data)
	} else if err != nil {
		return err
	}
	return nil
}

// sameAsPublished is nil if path holds data, wraps os.ErrNotExist if there is no such file,
// and wraps ErrPublished if it holds other bytes.
func sameAsPublished(path string, data []byte) error {
	old, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if !bytes.Equal(old, data) {
		return fmt.Errorf("%s (%d bytes, these are %d): %w", path, len(old), len(data), ErrPublished)
	}
	return nil
}
