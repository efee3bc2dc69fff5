package packager

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/reelvideo/reel/manifest"
)

// Publishing is atomic: a presentation is built in a hidden folder beside its destination and
// renamed into place when complete, so a player (or `reel origin`) never sees half of one. An
// interrupted run leaves only a dot-folder, which the origin refuses to serve.

// checkOutput fails early when the destination cannot be written or holds something that is
// not a presentation (we never delete a user's unrelated files).
func checkOutput(out string) error {
	// Missing parents are created when the run starts (like mkdir -p); the nearest existing
	// ancestor must be a folder.
	for parent := filepath.Dir(filepath.Clean(out)); ; parent = filepath.Dir(parent) {
		st, err := os.Stat(parent)
		if errors.Is(err, fs.ErrNotExist) && parent != filepath.Dir(parent) {
			continue
		}
		if err != nil {
			return &OutputError{Dir: out, Err: fmt.Errorf("parent folder: %w", unwrapPath(err))}
		}
		if !st.IsDir() {
			return &OutputError{Dir: out, Err: fmt.Errorf("parent %s is not a folder", parent)}
		}
		break
	}
	st, err := os.Stat(out)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return &OutputError{Dir: out, Err: unwrapPath(err)}
	}
	if !st.IsDir() {
		return &OutputError{Dir: out, Err: errors.New("exists and is not a folder")}
	}
	if !replaceable(out) {
		return &OutputError{Dir: out, Err: errors.New("exists and is not a Reel presentation; refusing to replace it")}
	}
	return nil
}

// replaceable reports whether dir is empty or a presentation we wrote before.
func replaceable(dir string) bool {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	if len(entries) == 0 {
		return true
	}
	_, err = os.Stat(filepath.Join(dir, manifest.MasterPlaylist))
	return err == nil
}

func makeTemp(out string) (string, error) {
	clean := filepath.Clean(out)
	if err := os.MkdirAll(filepath.Dir(clean), 0o755); err != nil {
		return "", &OutputError{Dir: out, Err: fmt.Errorf("cannot create output: %w", unwrapPath(err))}
	}
	tmp, err := os.MkdirTemp(filepath.Dir(clean), "."+filepath.Base(clean)+".reel-tmp-")
	if err != nil {
		return "", &OutputError{Dir: out, Err: fmt.Errorf("cannot create output: %w", unwrapPath(err))}
	}
	// MkdirTemp makes 0700; a published presentation is read by web servers.
	if err := os.Chmod(tmp, 0o755); err != nil {
		os.RemoveAll(tmp)
		return "", &OutputError{Dir: out, Err: err}
	}
	return tmp, nil
}

// publish moves tmp to out. An existing presentation is first moved aside, so the swap leaves
// either the old or the new one in place, never a mix.
func publish(tmp, out string) error {
	clean := filepath.Clean(out)
	if _, err := os.Stat(clean); errors.Is(err, fs.ErrNotExist) {
		if err := os.Rename(tmp, clean); err != nil {
			return &OutputError{Dir: out, Err: err}
		}
		return nil
	}
	if !replaceable(clean) {
		return &OutputError{Dir: out, Err: errors.New("exists and is not a Reel presentation; refusing to replace it")}
	}
	old, err := os.MkdirTemp(filepath.Dir(clean), "."+filepath.Base(clean)+".reel-old-")
	if err != nil {
		return &OutputError{Dir: out, Err: err}
	}
	os.Remove(old) // we only wanted a unique name
	if err := os.Rename(clean, old); err != nil {
		return &OutputError{Dir: out, Err: err}
	}
	if err := os.Rename(tmp, clean); err != nil {
		os.Rename(old, clean) // put the previous presentation back
		return &OutputError{Dir: out, Err: err}
	}
	return os.RemoveAll(old)
}

// unwrapPath drops the *PathError wrapper whose path we already print.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
