package packager

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"
)

// An Origin serves from a store: a folder on disk (dirStore, below) or a bucket prefix in S3
// (s3Store, s3.go). The handler above it (origin.go) is the same for both: paths are checked and
// classified first, then the store opens the object, and http.ServeContent answers ranges and
// conditionals from its size, modification time and ETag.
type store interface {
	// open returns the object at name (a path checkPath accepted), or an error that is
	// fs.ErrNotExist for a missing one, os.ErrClosed after close, or a *storageError for a
	// fault of the storage itself. whole says the answer will be the whole body (a plain GET):
	// a remote store may then fetch it with the metadata in one request.
	open(ctx context.Context, name string, whole bool) (object, error)
	close() error
}

// object is one opened file or object.
type object interface {
	size() int64
	modTime() time.Time
	// etag is the strong, content-derived ETag (etag.go): the same for the same bytes
	// wherever they are stored.
	etag(ctx context.Context) (string, error)
	// content is what ServeContent reads and seeks; for a folder the *os.File itself, so that
	// the server's sendfile path is kept.
	content() io.ReadSeeker
	close() error
}

// windowed is an object that reads remotely: told the span [start, end) an answer needs
// before ServeContent reads, it fetches only those bytes (reading outside it still works).
type windowed interface {
	window(start, end int64)
}

// storageError is a fault of the storage behind the origin (a bucket unreachable or refusing
// the origin's credentials): 502, never the client's 404.
type storageError struct{ err error }

func (e *storageError) Error() string { return e.err.Error() }
func (e *storageError) Unwrap() error { return e.err }

// dirStore serves a folder held open as an os.Root, so renaming or replacing the folder
// itself afterwards does not change what is served.
type dirStore struct {
	root    *os.Root
	digests *digestCache // content ETags (etag.go)
}

func newDirStore(dir string) (*dirStore, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", dir)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	return &dirStore{root: root, digests: newDigestCache(digestCacheEntries)}, nil
}

func (d *dirStore) close() error { return d.root.Close() }

// errNotRegular is a name that exists but is not a regular file (a folder, a FIFO): not found.
var errNotRegular = fmt.Errorf("not a regular file: %w", fs.ErrNotExist)

func (d *dirStore) open(ctx context.Context, name string, whole bool) (object, error) {
	f, err := d.root.OpenFile(name, openFlags, 0)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, errNotRegular
	}
	return &dirObject{f: f, fi: fi, name: name, digests: d.digests}, nil
}

type dirObject struct {
	f       *os.File
	fi      fs.FileInfo
	name    string
	digests *digestCache
}

func (o *dirObject) size() int64            { return o.fi.Size() }
func (o *dirObject) modTime() time.Time     { return o.fi.ModTime() }
func (o *dirObject) content() io.ReadSeeker { return o.f }
func (o *dirObject) close() error           { return o.f.Close() }
func (o *dirObject) etag(ctx context.Context) (string, error) {
	return o.digests.etag(ctx, o.name, o.f, o.fi)
}
