package store

import (
	"os"
	"path/filepath"
	"syscall"
)

// space is what the disk tier's folder occupies on the file system, in allocated blocks
// (st_blocks, what du counts), not in body lengths: a 100 KB body holds 25 blocks of 4 KiB,
// the 256 folders of objects/ hold a block each and grow with their entries, and badger's
// files (write-ahead log, tables, manifest) hold the rest. The capacity bounds their sum, and
// room for a body is made before its first byte is written (Disk.Reserve), so that the folder
// never holds more than the capacity, fills in flight included. d.mu guards it.
type space struct {
	bodies   int64            // committed bodies' blocks
	reserved int64            // rooms of bodies being written
	dirs     map[string]int64 // each folder's own blocks (folders never shrink)
	dirTotal int64
	index    int64 // badger's files, as last measured
	block    int64 // the file system's block size
}

// indexSlack is what badger may add between two measurements of its folder: a memtable
// flushed to a table while its log still exists, or a compaction writing new tables before
// it deletes the old — at most what the index holds, and at least one memtable.
func (s *space) indexSlack() int64 { return max(s.index, indexMemTable) }

func (s *space) used() int64 {
	return s.bodies + s.reserved + s.dirTotal + s.index + s.indexSlack()
}

// roomFor is what a body of n bytes is reserved: its blocks, and one more for what a file
// system may allocate beyond them while the file grows (extent blocks, preallocation).
func (s *space) roomFor(n int64) int64 {
	return (n+s.block-1)/s.block*s.block + s.block
}

// noteDir records a folder's current blocks.
func (s *space) noteDir(dir string) {
	n := allocatedBlocks(dir)
	s.dirTotal += n - s.dirs[dir]
	s.dirs[dir] = n
}

// measureIndex re-reads the blocks of badger's files (a flat folder of a few files).
func (s *space) measureIndex(dir string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return // keep the last figure
	}
	var n int64
	for _, e := range ents {
		n += allocatedBlocks(filepath.Join(dir, e.Name()))
	}
	s.index = n
}

// allocatedBlocks is the bytes of the blocks a file or folder holds (0 if it is gone).
func allocatedBlocks(path string) int64 {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return 0
	}
	return st.Blocks * 512
}

// blockSize is the file system's block size at dir (4 KiB when it can't be read).
func blockSize(dir string) int64 {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil || st.Bsize <= 0 {
		return 4 << 10
	}
	return int64(st.Bsize)
}

// FolderUsage is what du counts for a folder: the allocated blocks of everything under it.
// Files that vanish while it walks are skipped (a walk is not a snapshot).
func FolderUsage(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(p string, _ os.DirEntry, err error) error {
		if err == nil {
			n += allocatedBlocks(p)
		}
		return nil
	})
	return n
}
