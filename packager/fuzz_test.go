package packager

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzOpenInput feeds arbitrary bytes to the input reader: opening, describing tracks and
// walking every sample must return an error or succeed, never panic or run away.
func FuzzOpenInput(f *testing.F) {
	// Whole tiny files (7 KB), so the fuzzer mutates structure rather than media.
	for _, name := range []string{"fuzz/tiny.mp4", "fuzz/tiny_frag.mp4"} {
		b, err := os.ReadFile(samplePath(name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("not an mp4 at all"))
	f.Add([]byte{0, 0, 0, 8, 'f', 't', 'y', 'p'})
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		file := filepath.Join(dir, "in.mp4")
		if err := os.WriteFile(file, data, 0o644); err != nil {
			t.Fatal(err)
		}
		in, err := openGuarded(file)
		if err != nil {
			return
		}
		defer in.Close()
		for _, tr := range in.tracks {
			it, err := tr.newIter()
			if err != nil {
				continue
			}
			// Bounded: a corrupt table may claim billions of samples.
			for i := 0; i < 100000; i++ {
				if _, err := it.next(); err != nil {
					if err != io.EOF {
						break
					}
					break
				}
			}
		}
	})
}

// FuzzCheckPath: whatever the request path, an accepted name is a clean relative path with no
// way out of the served folder and nothing hidden.
func FuzzCheckPath(f *testing.F) {
	for _, s := range []string{"/master.m3u8", "/video_720p/seg_00001.m4s", "/../etc/passwd", "/a/./b", "/.hidden/x", "/a\\b", "//x", "/a/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		name, status, _ := checkPath(p)
		if status != 0 {
			if name != "" {
				t.Fatalf("%q refused with %d but returned name %q", p, status, name)
			}
			return
		}
		if !filepath.IsLocal(name) || filepath.Clean(name) != name || strings.ContainsAny(name, "\\\x00") {
			t.Fatalf("%q accepted as %q, which is not a clean local path", p, name)
		}
		for _, elem := range strings.Split(name, "/") {
			if strings.HasPrefix(elem, ".") {
				t.Fatalf("%q accepted as %q, which has a hidden or dot element", p, name)
			}
		}
	})
}
