package packager

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"

	"github.com/reelvideo/reel/manifest"
)

// Checks that make an input that parses cleanly still unfit to package: the same media given
// twice (it would become two identical renditions, video_360p and video_360p_2), and a track
// whose samples carry no media (it packages into segments a player cannot decode). VOD
// packaging and the looped live source both read their inputs through here.

// openInputs opens every input, in order, and refuses one that is another input again: the
// same file (by another path, a symlink or a hard link) or a copy of its bytes. On error the
// files opened so far are closed.
func openInputs(ctx context.Context, paths []string) (inputs []*inputFile, err error) {
	defer func() {
		if err != nil {
			for _, in := range inputs {
				in.Close()
			}
			inputs = nil
		}
	}()
	for _, path := range paths {
		in, err := openGuarded(path)
		if err != nil {
			return inputs, err
		}
		inputs = append(inputs, in)
		for _, prev := range inputs[:len(inputs)-1] {
			if err := checkDistinct(ctx, prev, in); err != nil {
				return inputs, err
			}
		}
	}
	return inputs, nil
}

// checkDistinct refuses b when it is a or holds a's bytes.
func checkDistinct(ctx context.Context, a, b *inputFile) error {
	if os.SameFile(a.info, b.info) {
		return &InputError{File: b.path, Err: fmt.Errorf("the same file as %s: an input given twice", a.path)}
	}
	if a.size != b.size {
		return nil
	}
	same, err := sameBytes(ctx, a.f, b.f, a.size)
	if err != nil {
		return &InputError{File: b.path, Err: err}
	}
	if same {
		return &InputError{File: b.path, Err: fmt.Errorf("the same content as %s: an input given twice", a.path)}
	}
	return nil
}

// compareBufferSize is the read size when comparing two inputs of equal size (rare: a ladder's
// rungs differ in size, so this runs only for copies, which it reads in full).
const compareBufferSize = 256 << 10

// sameBytes compares the first size bytes of a and b, stopping at the first difference.
func sameBytes(ctx context.Context, a, b io.ReaderAt, size int64) (bool, error) {
	bufA, bufB := make([]byte, compareBufferSize), make([]byte, compareBufferSize)
	for off := int64(0); off < size; {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		n := int(min(int64(compareBufferSize), size-off))
		if _, err := a.ReadAt(bufA[:n], off); err != nil {
			return false, fmt.Errorf("reading at offset %d: %w", off, err)
		}
		if _, err := b.ReadAt(bufB[:n], off); err != nil {
			return false, fmt.Errorf("reading at offset %d: %w", off, err)
		}
		if !bytes.Equal(bufA[:n], bufB[:n]) {
			return false, nil
		}
		off += int64(n)
	}
	return true, nil
}

// walkSamples calls fn with every sample of t in decode order, after checking that its data
// lies inside the file, and refuses a track without media: no samples, samples that are all
// empty, or an empty video keyframe (every segment starts with one). Errors name the file.
func walkSamples(t *inputTrack, fn func(sample)) error {
	it, err := t.newIter()
	if err != nil {
		return inputErr(t.in.path, err)
	}
	n, empty, emptyKey := 0, 0, 0
	for {
		s, err := it.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return inputErr(t.in.path, err)
		}
		n++
		if s.off < 0 || s.off+int64(s.size) > t.in.size {
			return inputErr(t.in.path, fmt.Errorf("truncated: %s sample %d needs bytes up to %d, the file has %d",
				t.kind, n, s.off+int64(s.size), t.in.size))
		}
		if s.size == 0 {
			empty++
			if s.sync && emptyKey == 0 {
				emptyKey = n
			}
		}
		fn(s)
	}
	switch {
	case n == 0:
		return inputErr(t.in.path, fmt.Errorf("%s track %d has no samples", t.kind, t.trackID))
	case empty == n:
		return inputErr(t.in.path, fmt.Errorf("%s track %d has no media: all its %d samples are empty (0 bytes)", t.kind, t.trackID, n))
	case t.kind == manifest.Video && emptyKey > 0:
		return inputErr(t.in.path, fmt.Errorf("video track %d: keyframe %d is empty (0 bytes)", t.trackID, emptyKey))
	}
	return nil
}
