package live

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// One writer per channel. Two processes producing one channel in one folder would both
// append to its segment logs and publish different bytes under the same segment names, which
// caches keep for a year (immutable). A channel therefore holds an OS advisory lock (flock) on
// a file in its folder for as long as it lives, taken before anything in the folder is read or
// written. The kernel drops the lock when the process dies, however it dies: a stale lock file
// never blocks a restart. The holder writes who it is into the file, so that the process
// refused can say whom it is waiting for.

const lockFile = ".lock"

// ErrInUse is returned by NewChannel when another process (or another Channel in this one)
// produces the channel in that folder.
var ErrInUse = errors.New("in use")

// folderLock is a held lock on a channel's folder.
type folderLock struct{ f *os.File }

// lockFolder takes dir's lock without waiting, or says who holds it.
func lockFolder(dir string) (*folderLock, error) {
	path := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s is %w by %s", dir, ErrInUse, describeHolder(holder))
		}
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	host, _ := os.Hostname()
	who := fmt.Sprintf("pid %d on %s (started %s)\n", os.Getpid(), host, time.Now().UTC().Format(time.RFC3339))
	// Written in place, not renamed: the lock belongs to this inode.
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(who), 0)
	}
	return &folderLock{f: f}, nil
}

// describeHolder is the holder's line from the lock file, or a placeholder when it has not
// written it yet (it took the lock a moment ago).
func describeHolder(b []byte) string {
	if s := strings.TrimSpace(string(b)); s != "" && !strings.ContainsAny(s, "\n\r") {
		return s
	}
	return "another process (it has not said which yet)"
}

// release drops the lock (closing the file does, as process exit would).
func (l *folderLock) release() {
	if l != nil && l.f != nil {
		l.f.Close()
		l.f = nil
	}
}
