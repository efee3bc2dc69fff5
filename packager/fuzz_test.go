package packager

import (
	"io"
	"os"
	"path/filepath"
	"testing"
)

// FuzzOpenInput feeds arbitrary bytes to the input reader: opening, describing tracks and
// walking every sample must return an error or succeed, never panic or run away.
func FuzzOpenInput(f *testing.F) {
	for _, name := range []string{"ladder_360p.mp4", "audio_fra.mp4", "hevc_360p.mp4"} {
		b, err := os.ReadFile(samplePath(name))
		if err != nil {
			f.Fatal(err)
		}
		// Headers and sample tables live in the first KiB of these faststart files; the
		// seeds stay small so the fuzzer mutates structure, not media.
		f.Add(b[:min(len(b), 8192)])
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
