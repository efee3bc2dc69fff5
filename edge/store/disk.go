package store

import (
	"container/list"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Disk is the disk tier. Bodies are plain files (objects/ab/abcdef…), written under tmp/ while
// they fill and renamed into place only when complete; their metadata lives in a badger index
// (index/) and in memory. Bodies never go into badger: its value log does not reclaim space
// under cache churn, and a full disk there kills the process (DESIGN.md).
//
// Crash safety: a body is renamed into objects/ before its index record is written, so after
// a crash a body may lack a record (deleted at open) but a record never points at a partial
// body; records whose file is missing or of the wrong size are dropped at open, and tmp/ is
// emptied. An interrupted fill is therefore never served as complete.
type Disk struct {
	dir      string
	db       *badger.DB
	capacity int64
	minFree  int64 // stop admitting below this much free space on the file system
	log      *slog.Logger
	onEvict  func(cause string)

	mu      sync.Mutex
	entries map[string]*diskEntry // by primary key
	byID    map[string]*list.Element
	lru     *list.List // of *DiskObject, front = most recently used
	space   space
	heap    int64 // what the in-memory index costs the Go heap (IndexMemory)

	stopSaving chan struct{} // closed by Close
	saverDone  chan struct{}
}

// AccessSaveInterval is how often access times are written to the index, so that recency
// survives a crash or kill -9 (to within one interval), not only a clean shutdown. A hit only
// marks the object; the write is batched here rather than paid on the hit path.
var AccessSaveInterval = time.Minute

type diskEntry struct {
	vary     []string
	variants map[string]*DiskObject
}

// DiskObject is a stored response whose body is a file.
type DiskObject struct {
	ID           string      `json:"-"`
	Primary      string      `json:"primary"`
	Vary         []string    `json:"vary,omitempty"`
	VaryKey      string      `json:"vk"`
	Status       int         `json:"status"`
	Header       http.Header `json:"header"`
	RequestTime  time.Time   `json:"req"`
	ResponseTime time.Time   `json:"resp"`
	Size         int64       `json:"size"`
	// File is the body's name under objects/: unique per commit, so that a refill of the
	// same key never replaces a file someone may be reading with other headers.
	File string `json:"file"`
	// Invalidated marks a soft purge: the object must be revalidated before reuse, but may
	// still be served when the origin fails (stale-if-error).
	Invalidated bool `json:"invalidated,omitempty"`
	// LastAccess orders eviction across restarts; kept in memory on every hit and written
	// to the index at Close (a crash loses only recency, never content).
	LastAccess time.Time `json:"access,omitzero"`
	path       string
	touched    bool
	blocks     int64 // the body file's allocated bytes (st_blocks), what it costs the tier
}

// Path is the body file.
func (o *DiskObject) Path() string { return o.path }

// diskObjectOverhead is what an indexed object costs the heap besides its strings and header:
// the DiskObject, its LRU element, map slots, and its share of badger's memtable (measured
// with runtime.MemStats in TestDiskIndexMemoryCounted).
const diskObjectOverhead = 1 << 10

func (o *DiskObject) heapCost() int64 {
	return diskObjectOverhead + 2*int64(len(o.Primary)) + int64(len(o.VaryKey)+len(o.ID)+len(o.File)+len(o.path)) + headerHeap(o.Header)
}

// IndexMemory is what the disk tier's in-memory index costs the Go heap: about 1.5 KiB an
// object, so 10 GiB of 100 KB objects hold some 150 MiB — memory the memory tier's size does
// not cover, which the Go memory limit follows (edge.FollowDiskIndex).
func (d *Disk) IndexMemory() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.heap
}

// OpenDisk opens (or creates) the disk tier in dir, holding at most capacity bytes of bodies.
func OpenDisk(dir string, capacity int64, log *slog.Logger, onEvict func(cause string)) (*Disk, error) {
	if capacity <= 0 {
		return nil, fmt.Errorf("disk capacity must be positive, got %d", capacity)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	for _, sub := range []string{"objects", "tmp", "index"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, err
		}
	}
	// Fills interrupted by a crash or kill -9: never complete, never served.
	if err := os.RemoveAll(filepath.Join(dir, "tmp")); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o755); err != nil {
		return nil, err
	}
	db, err := badger.Open(indexOptions(filepath.Join(dir, "index")))
	if err != nil {
		return nil, fmt.Errorf("opening the cache index: %w", err)
	}
	d := &Disk{
		dir: dir, db: db, capacity: capacity, log: log, onEvict: onEvict,
		minFree: 1 << 30,
		entries: map[string]*diskEntry{}, byID: map[string]*list.Element{}, lru: list.New(),
		space: space{dirs: map[string]int64{}, block: blockSize(dir)},
	}
	if err := d.load(); err != nil {
		db.Close()
		return nil, err
	}
	d.space.measureIndex(d.indexDir())
	d.stopSaving, d.saverDone = make(chan struct{}), make(chan struct{})
	go d.saveLoop()
	return d, nil
}

// The badger index holds only metadata records (a few hundred bytes each), so its memory is
// kept small and bounded: two 2 MiB memtables, 2 MiB block and index caches, two compactors.
// DiskIndexMemory is what the Go memory limit budgets for it (edge.GoMemoryLimit): those
// buffers plus the caches' own structures, bloom filters and compaction buffers.
const (
	indexMemTable   = 2 << 20
	indexCache      = 2 << 20
	DiskIndexMemory = 16 << 20
)

func indexOptions(dir string) badger.Options {
	return badger.DefaultOptions(dir).
		WithLogger(nil).
		WithMemTableSize(indexMemTable).
		WithNumMemtables(2).
		WithNumLevelZeroTables(2).
		WithNumLevelZeroTablesStall(8).
		WithBaseTableSize(indexMemTable).
		WithNumCompactors(2).
		WithBlockCacheSize(indexCache).
		WithIndexCacheSize(indexCache).
		// Metadata stays in the LSM tree, out of the value log (at most 15% of a memtable:
		// badger's batch limit); no record comes near it.
		WithValueThreshold(256 << 10).
		WithValueLogFileSize(16 << 20).
		WithNumVersionsToKeep(1).
		WithSyncWrites(false)
}

func (d *Disk) saveLoop() {
	defer close(d.saverDone)
	t := time.NewTicker(AccessSaveInterval)
	defer t.Stop()
	for {
		select {
		case <-d.stopSaving:
			return
		case <-t.C:
			d.saveAccessTimes()
		}
	}
}

// load rebuilds the in-memory index from badger, dropping records whose body is missing or
// has the wrong size, and deleting bodies that no record names.
func (d *Disk) load() error {
	known := map[string]bool{}
	var stale [][]byte
	var loaded []*DiskObject
	err := d.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.DefaultIteratorOptions)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			id := string(item.Key())
			var o DiskObject
			if err := item.Value(func(v []byte) error { return json.Unmarshal(v, &o) }); err != nil {
				stale = append(stale, item.KeyCopy(nil))
				continue
			}
			o.ID, o.path = id, d.bodyPath(o.File)
			if o.File == "" {
				stale = append(stale, item.KeyCopy(nil))
				continue
			}
			st, err := os.Stat(o.path)
			if err != nil || st.Size() != o.Size {
				stale = append(stale, item.KeyCopy(nil))
				continue
			}
			o.blocks = fileBlocks(st)
			known[o.File] = true
			loaded = append(loaded, &o)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("reading the cache index: %w", err)
	}
	// Least recently used first, so that the most recent end up at the front of the LRU.
	slices.SortFunc(loaded, func(a, b *DiskObject) int { return a.LastAccess.Compare(b.LastAccess) })
	for _, o := range loaded {
		d.index(o)
	}
	if len(stale) > 0 {
		wb := d.db.NewWriteBatch()
		for _, k := range stale {
			wb.Delete(k)
		}
		if err := wb.Flush(); err != nil {
			return err
		}
	}
	for _, dir := range []string{d.dir, d.indexDir(), filepath.Join(d.dir, "tmp")} {
		d.space.noteDir(dir)
	}
	// Bodies without a record: renamed into place just before a crash.
	return filepath.WalkDir(filepath.Join(d.dir, "objects"), func(p string, de os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if de.IsDir() {
			d.space.noteDir(p)
		} else if !known[de.Name()] {
			os.Remove(p)
		}
		return nil
	})
}

func (d *Disk) indexDir() string { return filepath.Join(d.dir, "index") }

// fileBlocks is the bytes of the blocks a file holds, from its stat.
func fileBlocks(st os.FileInfo) int64 {
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		return sys.Blocks * 512
	}
	return st.Size()
}

func objectID(primary, vk string) string {
	h := sha256.Sum256([]byte(primary + "\x00" + vk))
	return hex.EncodeToString(h[:])
}

func (d *Disk) bodyPath(file string) string {
	if len(file) < 2 {
		return filepath.Join(d.dir, "objects", "invalid")
	}
	return filepath.Join(d.dir, "objects", file[:2], file)
}

// index adds o to the in-memory structures and returns the objects it displaces (the same
// variant, or every variant when the URL's Vary changed); d.mu must be held or d unshared.
func (d *Disk) index(o *DiskObject) (displaced []*DiskObject) {
	e := d.entries[o.Primary]
	if e == nil || !slices.Equal(e.vary, o.Vary) {
		if e != nil {
			for _, old := range e.variants {
				displaced = append(displaced, old)
			}
			for _, old := range displaced {
				d.unindex(old)
			}
		}
		e = &diskEntry{vary: o.Vary, variants: map[string]*DiskObject{}}
		d.entries[o.Primary] = e
	}
	if old := e.variants[o.VaryKey]; old != nil {
		d.unindex(old)
		displaced = append(displaced, old)
	}
	e.variants[o.VaryKey] = o
	d.entries[o.Primary] = e // unindex may have dropped the emptied entry
	d.byID[o.ID] = d.lru.PushFront(o)
	d.space.bodies += o.blocks
	d.heap += o.heapCost()
	return displaced
}

func (d *Disk) unindex(o *DiskObject) {
	if el, ok := d.byID[o.ID]; ok {
		if el.Value.(*DiskObject) == o {
			d.lru.Remove(el)
			delete(d.byID, o.ID)
			d.space.bodies -= o.blocks
			d.heap -= o.heapCost()
		}
	}
	if e := d.entries[o.Primary]; e != nil && e.variants[o.VaryKey] == o {
		delete(e.variants, o.VaryKey)
		if len(e.variants) == 0 {
			delete(d.entries, o.Primary)
		}
	}
}

// TempFile returns a new file under tmp/ for a body being filled.
func (d *Disk) TempFile() (*os.File, error) {
	return os.CreateTemp(filepath.Join(d.dir, "tmp"), "fill-*")
}

// Room is space reserved in the disk tier for one body while it is written (Disk.Reserve).
type Room struct {
	d *Disk
	n int64
}

// Reserve makes room for a body of size bytes before it is written (0 when its length is
// unknown: it is then counted when committed), evicting least recently used objects, and
// holds it until the room is committed or released. It returns nil when the body can't be
// stored now: larger than the tier, or it would cross the file system's free-space reserve
// (a full disk must never take the edge down).
func (d *Disk) Reserve(size int64) *Room {
	if size > d.capacity || !d.freeSpaceFor(size) {
		return nil
	}
	need := d.space.roomFor(size)
	d.mu.Lock()
	d.space.measureIndex(d.indexDir())
	d.space.noteDir(filepath.Join(d.dir, "tmp"))
	victims := d.evict(need, nil)
	fits := d.space.used()+need <= d.capacity
	if fits {
		d.space.reserved += need
	}
	d.mu.Unlock()
	d.forget(victims, "size")
	if !fits {
		return nil
	}
	return &Room{d: d, n: need}
}

// Release gives back a room whose body was not committed. Safe on nil and after Commit.
func (r *Room) Release() {
	if r == nil || r.d == nil {
		return
	}
	r.d.mu.Lock()
	r.d.space.reserved -= r.n
	r.d.mu.Unlock()
	r.d = nil
}

// freeSpaceFor reports whether size more bytes leave the file system its reserve.
func (d *Disk) freeSpaceFor(size int64) bool {
	var st syscall.Statfs_t
	if err := syscall.Statfs(d.dir, &st); err != nil {
		return false
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	return free-size > min(d.minFree, free/2)
}

// SetMinFree changes the free-space reserve (tests, small volumes).
func (d *Disk) SetMinFree(n int64) { d.minFree = n }

// Commit publishes a completely written body file (from TempFile, closed by the caller) as
// object o without a reserved room (Room.Commit is the way that holds the capacity at every
// moment): it evicts least recently used objects to fit.
func (d *Disk) Commit(tmpPath string, o *DiskObject) error {
	return (&Room{d: d}).Commit(tmpPath, o)
}

// Commit publishes a completely written body file (from TempFile, closed by the caller) as
// object o: rename into place, then index record. The room becomes the object's real blocks;
// if the body took more than was reserved (unknown length), least recently used objects go.
// The room is released in any case.
func (r *Room) Commit(tmpPath string, o *DiskObject) error {
	d := r.d
	defer r.Release()
	o.ID = objectID(o.Primary, o.VaryKey)
	o.LastAccess = time.Now()
	var nonce [8]byte
	rand.Read(nonce[:])
	o.File = o.ID + "-" + hex.EncodeToString(nonce[:])
	o.path = d.bodyPath(o.File)
	st, err := os.Stat(tmpPath)
	if err != nil || st.Size() != o.Size {
		os.Remove(tmpPath)
		return fmt.Errorf("body file does not hold %d bytes", o.Size)
	}
	o.blocks = fileBlocks(st)
	sub := filepath.Dir(o.path)
	if err := os.MkdirAll(sub, 0o755); err != nil {
		return err
	}
	if err := os.Rename(tmpPath, o.path); err != nil {
		os.Remove(tmpPath)
		return err
	}
	meta, err := json.Marshal(o)
	if err != nil {
		return err
	}
	if err := d.db.Update(func(txn *badger.Txn) error { return txn.Set([]byte(o.ID), meta) }); err != nil {
		os.Remove(o.path)
		return fmt.Errorf("writing the cache index: %w", err)
	}
	d.mu.Lock()
	d.space.noteDir(filepath.Dir(sub))
	d.space.noteDir(sub)
	d.space.measureIndex(d.indexDir())
	displaced := d.index(o)
	d.space.reserved -= r.n
	r.d = nil // the room is now the object
	var victims []*DiskObject
	for _, old := range displaced {
		os.Remove(old.path)
		if old.ID != o.ID { // else its record was just overwritten by o's
			victims = append(victims, old)
		}
	}
	victims = append(victims, d.evict(0, o)...)
	d.mu.Unlock()
	d.forget(victims, "size")
	return nil
}

// evict discards least recently used objects other than keep until need more bytes fit in
// the capacity, removing their files before it returns — under d.mu, so that no one counts
// on space still held by a file — and returns them for forget; d.mu held.
func (d *Disk) evict(need int64, keep *DiskObject) []*DiskObject {
	var out []*DiskObject
	for d.space.used()+need > d.capacity {
		el := d.lru.Back()
		if el == nil || el.Value.(*DiskObject) == keep {
			break
		}
		o := el.Value.(*DiskObject)
		d.discard(o)
		out = append(out, o)
	}
	return out
}

// discard unindexes o and removes its body file; d.mu held. A body still being read stays
// readable: an open file outlives its name (its blocks are freed when the reader closes it).
func (d *Disk) discard(o *DiskObject) {
	d.unindex(o)
	os.Remove(o.path)
}

// forget deletes discarded objects' index records.
func (d *Disk) forget(objs []*DiskObject, cause string) {
	if len(objs) == 0 {
		return
	}
	wb := d.db.NewWriteBatch()
	for _, o := range objs {
		wb.Delete([]byte(o.ID))
		if d.onEvict != nil {
			d.onEvict(cause)
		}
	}
	if err := wb.Flush(); err != nil {
		d.log.Warn("cache index: deleting records", "err", err)
	}
}

// Lookup returns the Vary lines and variants stored for primary.
func (d *Disk) Lookup(primary string) (vary []string, variant func(vk string) *DiskObject, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	e := d.entries[primary]
	if e == nil {
		return nil, nil, false
	}
	return e.vary, func(vk string) *DiskObject {
		d.mu.Lock()
		defer d.mu.Unlock()
		o := e.variants[vk]
		if o != nil {
			if el, ok := d.byID[o.ID]; ok {
				d.lru.MoveToFront(el)
			}
			o.LastAccess, o.touched = time.Now(), true
		}
		return o
	}, true
}

// Update replaces an object's metadata (after a 304 merged new headers), keeping its body.
// It does nothing when o is no longer the stored object for its key (a refill replaced it):
// the new body must never get the old response's headers.
func (d *Disk) Update(o *DiskObject, header http.Header, reqTime, respTime time.Time) error {
	c := *o
	c.Header, c.RequestTime, c.ResponseTime, c.Invalidated = header, reqTime, respTime, false
	return d.replaceMeta(o, &c)
}

// MarkInvalidated soft-purges every variant of primary: kept, but revalidated before reuse.
func (d *Disk) MarkInvalidated(primary string) bool {
	d.mu.Lock()
	objs := d.variantsOf(primary)
	d.mu.Unlock()
	for _, o := range objs {
		c := *o
		c.Invalidated = true
		d.replaceMeta(o, &c)
	}
	return len(objs) > 0
}

// variantsOf lists the objects stored for primary; d.mu must be held.
func (d *Disk) variantsOf(primary string) []*DiskObject {
	var out []*DiskObject
	if e := d.entries[primary]; e != nil {
		for _, o := range e.variants {
			out = append(out, o)
		}
	}
	return out
}

func (d *Disk) replaceMeta(old, c *DiskObject) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	el, ok := d.byID[old.ID]
	if !ok || el.Value.(*DiskObject) != old {
		return nil
	}
	meta, err := json.Marshal(c)
	if err != nil {
		return err
	}
	if err := d.db.Update(func(txn *badger.Txn) error { return txn.Set([]byte(c.ID), meta) }); err != nil {
		return err
	}
	d.unindex(old)
	d.index(c)
	return nil
}

// Invalidate drops every variant of primary.
func (d *Disk) Invalidate(primary string) bool {
	d.mu.Lock()
	victims := d.variantsOf(primary)
	for _, o := range victims {
		d.discard(o)
	}
	d.mu.Unlock()
	d.forget(victims, "invalidated")
	return len(victims) > 0
}

// Keys returns the primary keys held.
func (d *Disk) Keys() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]string, 0, len(d.entries))
	for k := range d.entries {
		out = append(out, k)
	}
	return out
}

// Each calls fn for every object held (used at start to rebuild the surrogate-key index from
// the stored headers).
func (d *Disk) Each(fn func(*DiskObject)) {
	d.mu.Lock()
	objs := make([]*DiskObject, 0, d.lru.Len())
	for el := d.lru.Front(); el != nil; el = el.Next() {
		objs = append(objs, el.Value.(*DiskObject))
	}
	d.mu.Unlock()
	for _, o := range objs {
		fn(o)
	}
}

// Size is the bytes the tier's folder holds on the file system, as the capacity counts them:
// bodies' blocks, rooms of bodies being written, folders, and badger's files with the room
// they may take before they are measured again.
func (d *Disk) Size() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.space.used()
}

// Close flushes and closes the index.
func (d *Disk) Close() error {
	if d.db == nil {
		return nil
	}
	select {
	case <-d.stopSaving:
		return nil // closed already
	default:
	}
	close(d.stopSaving)
	<-d.saverDone
	d.saveAccessTimes()
	return d.db.Close()
}

// saveAccessTimes writes the access times of objects used since the last save.
func (d *Disk) saveAccessTimes() {
	d.mu.Lock()
	records := map[string][]byte{}
	for el := d.lru.Front(); el != nil; el = el.Next() {
		o := el.Value.(*DiskObject)
		if !o.touched {
			continue
		}
		if meta, err := json.Marshal(o); err == nil {
			records[o.ID] = meta
			o.touched = false
		}
	}
	d.mu.Unlock()
	if len(records) == 0 {
		return
	}
	wb := d.db.NewWriteBatch()
	defer wb.Cancel()
	for id, meta := range records {
		wb.Set([]byte(id), meta)
	}
	if err := wb.Flush(); err != nil {
		d.log.Warn("cache index: saving access times", "err", err)
	}
}

// ErrNotAdmitted reports an object the disk tier had no room for.
var ErrNotAdmitted = errors.New("not admitted to the disk tier")
