package testkit

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/Eyevinn/mp4ff/mp4"
)

// emptyVideoSamples writes to dst a copy of the progressive MP4 src whose video samples are
// all zero bytes long (its sample size table zeroed): a file that parses cleanly and has a
// complete sample table, but no picture in it.
func emptyVideoSamples(tb testing.TB, src, dst string) {
	tb.Helper()
	f, err := mp4.ReadMP4File(src)
	if err != nil {
		tb.Fatal(err)
	}
	zeroed := 0
	for _, trak := range f.Moov.Traks {
		if trak.Mdia.Hdlr.HandlerType != "vide" {
			continue
		}
		stsz := trak.Mdia.Minf.Stbl.Stsz
		stsz.SampleUniformSize = 0
		stsz.SampleSize = make([]uint32, stsz.SampleNumber)
		zeroed += int(stsz.SampleNumber)
	}
	if zeroed == 0 {
		tb.Fatalf("%s has no video samples in a sample size table", src)
	}
	out, err := os.Create(dst)
	if err != nil {
		tb.Fatal(err)
	}
	defer out.Close()
	if err := f.Encode(out); err != nil {
		tb.Fatal(err)
	}
	if err := out.Close(); err != nil {
		tb.Fatal(err)
	}
}

// BadInputs are inputs made from a good progressive MP4 that a packager must refuse.
type BadInputs struct {
	EmptyVideo string // empty_video.mp4: its video samples are all empty (emptyVideoSamples)
	Symlink    string // a symbolic link to it: the same file under another name
	Copy       string // a copy of its bytes
}

// BadInputsFrom makes BadInputs from src in a temporary folder.
func BadInputsFrom(tb testing.TB, src string) BadInputs {
	tb.Helper()
	abs, err := filepath.Abs(src)
	if err != nil {
		tb.Fatal(err)
	}
	dir := tb.TempDir()
	d := BadInputs{
		EmptyVideo: filepath.Join(dir, "empty_video.mp4"),
		Symlink:    filepath.Join(dir, "link_"+filepath.Base(src)),
		Copy:       filepath.Join(dir, "copy_"+filepath.Base(src)),
	}
	emptyVideoSamples(tb, src, d.EmptyVideo)
	if err := os.Symlink(abs, d.Symlink); err != nil {
		tb.Fatal(err)
	}
	data, err := os.ReadFile(src)
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(d.Copy, data, 0o644); err != nil {
		tb.Fatal(err)
	}
	return d
}
