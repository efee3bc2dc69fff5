package store

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
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
	d := openDisk(t, dir, 1<<20)
	commit(t, d, "http://h/a", "", []byte("alpha"))
	gone := commit(t, d, "http://h/b", "", []byte("bravo"))
	// A crash mid-fill leaves a temp file; a crash between rename and record an orphan body.
	partial, _ := d.TempFile()
	partial.Write([]byte("half"))
	partial.Close()
	orphan := filepath.Join(dir, "objects", "ff", "ff00orphan")
	os.MkdirAll(filepath.Dir(orphan), 0o755)
	os.WriteFile(orphan, []byte("orphan"), 0o644)
	os.Remove(gone.Path()) // record whose body vanished
	d.Close()

	d = openDisk(t, dir, 1<<20)
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

// TestDiskEviction: least recently used objects go when the tier is over capacity.
func TestDiskEviction(t *testing.T) {
	d := openDisk(t, t.TempDir(), 3000)
	defer d.Close()
	for i := range 3 {
		commit(t, d, fmt.Sprint("k", i), "", make([]byte, 1000))
	}
	_, v, _ := d.Lookup("k0")
	v("") // k0 is now the most recently used
	commit(t, d, "k3", "", make([]byte, 1000))
	if _, _, ok := d.Lookup("k1"); ok {
		t.Fatal("least recently used object k1 was kept")
	}
	for _, k := range []string{"k0", "k2", "k3"} {
		if _, _, ok := d.Lookup(k); !ok {
			t.Fatalf("%s evicted", k)
		}
	}
	if d.Size() > 3000 {
		t.Fatalf("size %d over capacity", d.Size())
	}
	if d.Admit(4000) {
		t.Fatal("admitted an object larger than the tier")
	}
	if !d.Invalidate("k0") {
		t.Fatal("Invalidate found nothing")
	}
	if _, _, ok := d.Lookup("k0"); ok {
		t.Fatal("invalidated object still there")
	}
}

// TestDiskCommitChecksSize: a body file that is not exactly the declared size is refused.
func TestDiskCommitChecksSize(t *testing.T) {
	d := openDisk(t, t.TempDir(), 1<<20)
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
