package store

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

func openDisk(t *testing.T, dir string, capacity int64) *Disk {
	t.Helper()
	d, err := OpenDisk(dir, capacity, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	d.SetMinFree(0)
	return d
}

func commit(t *testing.T, d *Disk, primary, vk string, body []byte) *DiskObject {
	t.Helper()
	f, err := d.TempFile()
	if err != nil {
		t.Fatal(err)
	}
	f.Write(body)
	f.Close()
	o := &DiskObject{Primary: primary, VaryKey: vk, Status: 200, Header: http.Header{"Etag": {`"x"`}},
		RequestTime: time.Now(), ResponseTime: time.Now(), Size: int64(len(body))}
	if err := d.Commit(f.Name(), o); err != nil {
		t.Fatal(err)
	}
	return o
}

// TestDiskSurvivesRestart: complete objects come back after a reopen with their metadata; a
// fill left in tmp/, a body without a record and a record without its body are all dropped.
func TestDiskSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	d := openDisk(t, dir, 64<<20)
	commit(t, d, "http://h/a", "", []byte("alpha"))
	gone := commit(t, d, "http://h/b", "", []byte("bravo"))
	// A crash mid-fill leaves a temp file; a crash between rename and record an orphan body.
	partial, _ := d.TempFile()
	partial.Write([]byte("half"))
	partial.Close()
	orphan := filepath.Join(dir, "objects", "ff", "ff00orphan-0000")
	os.MkdirAll(filepath.Dir(orphan), 0o755)
	os.WriteFile(orphan, []byte("orphan"), 0o644)
	os.Remove(gone.Path()) // record whose body vanished
	d.Close()

	d = openDisk(t, dir, 64<<20)
	defer d.Close()
	_, variant, ok := d.Lookup("http://h/a")
	if !ok || variant("") == nil {
		t.Fatal("complete object lost across restart")
	}
	o := variant("")
	if b, _ := os.ReadFile(o.Path()); !bytes.Equal(b, []byte("alpha")) || o.Header.Get("Etag") != `"x"` || o.Status != 200 {
		t.Fatalf("object after restart: %+v body %q", o, b)
	}
	if _, _, ok := d.Lookup("http://h/b"); ok {
		t.Fatal("record without a body survived")
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(ents) != 0 {
		t.Fatalf("tmp/ not emptied: %v", ents)
	}
	if _, err := os.Stat(orphan); !os.IsNotExist(err) {
		t.Fatal("orphan body not deleted")
	}
}

// roomForThree is a capacity that holds three bodies of eachBody bytes beside what an empty
// tier's folder takes (folders, badger's files and the room they may grow into), with some
// margin for the index records: bodies of a MiB make the records' few KiB negligible.
const eachBody = 1 << 20

func roomForThree(t *testing.T) int64 {
	t.Helper()
	d := openDisk(t, t.TempDir(), 1<<30)
	defer d.Close()
	return d.Size() + 3*d.space.roomFor(eachBody) + eachBody/2
}

// TestDiskEviction: least recently used objects go when the tier is over capacity.
func TestDiskEviction(t *testing.T) {
	capacity := roomForThree(t)
	d := openDisk(t, t.TempDir(), capacity)
	defer d.Close()
	for i := range 3 {
		commit(t, d, fmt.Sprint("k", i), "", make([]byte, eachBody))
	}
	for i := range 3 {
		if _, _, ok := d.Lookup(fmt.Sprint("k", i)); !ok {
			t.Fatalf("k%d evicted though three fit", i)
		}
	}
	_, v, _ := d.Lookup("k0")
	v("") // k0 is now the most recently used
	commit(t, d, "k3", "", make([]byte, eachBody))
	if _, _, ok := d.Lookup("k1"); ok {
		t.Fatal("least recently used object k1 was kept")
	}
	for _, k := range []string{"k0", "k2", "k3"} {
		if _, _, ok := d.Lookup(k); !ok {
			t.Fatalf("%s evicted", k)
		}
	}
	if d.Size() > capacity {
		t.Fatalf("size %d over capacity", d.Size())
	}
	if d.Reserve(capacity+1) != nil {
		t.Fatal("made room for an object larger than the tier")
	}
	if !d.Invalidate("k0") {
		t.Fatal("Invalidate found nothing")
	}
	if _, _, ok := d.Lookup("k0"); ok {
		t.Fatal("invalidated object still there")
	}
}

// TestDiskRefillKeepsOldFile: a refill of the same key commits a new file, so a reader of
// the old object keeps its own bytes, and the old file goes once replaced; a 304 update
// aimed at the old object does not touch the new one.
func TestDiskRefillKeepsOldFile(t *testing.T) {
	d := openDisk(t, t.TempDir(), 64<<20)
	defer d.Close()
	old := commit(t, d, "k", "", []byte("version-1"))
	reader, err := os.Open(old.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	nu := commit(t, d, "k", "", []byte("version-2!"))
	if nu.Path() == old.Path() {
		t.Fatal("a refill reused the old file name")
	}
	if b, _ := io.ReadAll(reader); string(b) != "version-1" {
		t.Fatalf("reader of the old object read %q", b)
	}
	if _, err := os.Stat(old.Path()); !os.IsNotExist(err) {
		t.Fatal("the replaced file was not removed")
	}
	d.Update(old, http.Header{"Etag": {`"stale"`}}, time.Now(), time.Now())
	_, v, _ := d.Lookup("k")
	if got := v(""); got.Header.Get("Etag") == `"stale"` || got.Size != int64(len("version-2!")) {
		t.Fatalf("an update aimed at the old object changed the new one: %+v", got)
	}
}

// TestDiskCommitChecksSize: a body file that is not exactly the declared size is refused.
func TestDiskCommitChecksSize(t *testing.T) {
	d := openDisk(t, t.TempDir(), 64<<20)
	defer d.Close()
	f, _ := d.TempFile()
	f.Write([]byte("short"))
	f.Close()
	if err := d.Commit(f.Name(), &DiskObject{Primary: "p", Size: 100}); err == nil {
		t.Fatal("a short body was committed")
	}
	if _, _, ok := d.Lookup("p"); ok {
		t.Fatal("short body indexed")
	}
}

// TestDiskRecencySurvivesRestart: eviction after a restart still removes the least recently
// used object, not an arbitrary one.
func TestDiskRecencySurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	capacity := roomForThree(t)
	d := openDisk(t, dir, capacity)
	for i := range 3 {
		commit(t, d, fmt.Sprint("k", i), "", make([]byte, eachBody))
	}
	time.Sleep(2 * time.Millisecond)
	for _, k := range []string{"k0", "k2"} { // k1 is now the least recently used
		_, v, _ := d.Lookup(k)
		v("")
		time.Sleep(2 * time.Millisecond)
	}
	d.Close()
	d = openDisk(t, dir, capacity)
	defer d.Close()
	commit(t, d, "k3", "", make([]byte, eachBody))
	if _, _, ok := d.Lookup("k1"); ok {
		t.Fatal("after a restart, eviction kept the least recently used object")
	}
	for _, k := range []string{"k0", "k2", "k3"} {
		if _, _, ok := d.Lookup(k); !ok {
			t.Fatalf("%s evicted instead of k1", k)
		}
	}
}

// TestDiskRecencySurvivesCrash: access times reach the index periodically, so recency holds
// after a process that never ran Close (kill -9): the index is closed here without Close's
// final save, which is what a killed process leaves behind.
func TestDiskRecencySurvivesCrash(t *testing.T) {
	defer func(old time.Duration) { AccessSaveInterval = old }(AccessSaveInterval)
	AccessSaveInterval = 20 * time.Millisecond
	dir := t.TempDir()
	capacity := roomForThree(t)
	d := openDisk(t, dir, capacity)
	for i := range 3 {
		commit(t, d, fmt.Sprint("k", i), "", make([]byte, eachBody))
	}
	time.Sleep(2 * time.Millisecond)
	for _, k := range []string{"k0", "k2"} { // k1 is now the least recently used
		_, v, _ := d.Lookup(k)
		v("")
		time.Sleep(2 * time.Millisecond)
	}
	saved := false
	for range 200 { // wait for the saver to pass (bounded: 2 s)
		time.Sleep(10 * time.Millisecond)
		d.mu.Lock()
		saved = true
		for el := d.lru.Front(); el != nil; el = el.Next() {
			saved = saved && !el.Value.(*DiskObject).touched
		}
		d.mu.Unlock()
		if saved {
			break
		}
	}
	if !saved {
		t.Fatal("access times were never saved")
	}
	close(d.stopSaving)
	<-d.saverDone
	d.db.Close() // no final save
	d = openDisk(t, dir, capacity)
	defer d.Close()
	commit(t, d, "k3", "", make([]byte, eachBody))
	if _, _, ok := d.Lookup("k1"); ok {
		t.Fatal("after a crash, eviction kept the least recently used object")
	}
	for _, k := range []string{"k0", "k2", "k3"} {
		if _, _, ok := d.Lookup(k); !ok {
			t.Fatalf("%s evicted instead of k1", k)
		}
	}
}

// TestDiskReserveMakesRoomFirst: room for a body is made before it is written — the least
// recently used objects are gone when Reserve returns — and is given back when the body is not
// committed; while reserved, it counts against the capacity.
func TestDiskReserveMakesRoomFirst(t *testing.T) {
	dir := t.TempDir()
	capacity := roomForThree(t)
	d := openDisk(t, dir, capacity)
	defer d.Close()
	for i := range 3 {
		commit(t, d, fmt.Sprint("k", i), "", make([]byte, eachBody))
	}
	room := d.Reserve(eachBody)
	if room == nil {
		t.Fatal("no room made for a body the tier can hold")
	}
	if _, _, ok := d.Lookup("k0"); ok {
		t.Fatal("the least recently used object was kept while room was made")
	}
	if used := FolderUsage(dir) + eachBody; used > capacity {
		t.Fatalf("after Reserve, the folder plus the body to write is %d bytes, over %d", used, capacity)
	}
	if d.Reserve(eachBody) == nil {
		t.Fatal("a second room could not be made")
	}
	if _, _, ok := d.Lookup("k1"); ok {
		t.Fatal("a second room did not count the first")
	}
	before := d.Size()
	room.Release()
	room.Release() // twice is harmless
	if d.Size() >= before {
		t.Fatalf("a released room still counts: %d then %d", before, d.Size())
	}
}

// TestDiskIndexMemoryCounted: what the disk tier's index holds in memory costs the heap no more
// than IndexMemory says, for objects with a typical segment's URL and header.
func TestDiskIndexMemoryCounted(t *testing.T) {
	d := openDisk(t, t.TempDir(), 1<<30)
	defer d.Close()
	commitN := func(from, to int) {
		for i := from; i < to; i++ {
			f, err := d.TempFile()
			if err != nil {
				t.Fatal(err)
			}
			f.Write([]byte("x"))
			f.Close()
			now := time.Now()
			o := &DiskObject{Primary: fmt.Sprintf("http://cdn.example.com/vod/title/video/seg-%d.m4s", i), Status: 200,
				Header: http.Header{"Etag": {fmt.Sprintf(`"%x"`, i)}, "Cache-Control": {"public, max-age=3600"}, "Content-Type": {"video/iso.segment"},
					"Date": {now.Format(http.TimeFormat)}, "Last-Modified": {now.Format(http.TimeFormat)}},
				RequestTime: now, ResponseTime: now, Size: 1}
			if err := d.Commit(f.Name(), o); err != nil {
				t.Fatal(err)
			}
		}
	}
	commitN(0, 100) // badger's memtables and caches exist before the base is taken
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base, counted := int64(ms.HeapAlloc), d.IndexMemory()
	commitN(100, 3100)
	runtime.GC()
	runtime.ReadMemStats(&ms)
	held, counted := int64(ms.HeapAlloc)-base, d.IndexMemory()-counted
	t.Logf("3000 objects: %d B/object of heap, %d counted", held/3000, counted/3000)
	if held > counted {
		t.Errorf("the disk index holds %d bytes of heap but counts %d", held, counted)
	}
}
