package captions

import (
	"regexp"
	"slices"
	"testing"

	"github.com/reelvideo/reel/internal/testkit"
)

// FuzzDetect feeds arbitrary bytes as access units: the scan never panics, names only real
// channels in order, and finds the same in an access unit's Prefix as in the whole of it (the
// packager reads only that prefix).
func FuzzDetect(f *testing.F) {
	cc1 := testkit.CCData(testkit.CCTriple{Type: 0, Valid: true, B1: 0x94, B2: 0x20})
	p := packet708(block708(1, text708...), []byte{7<<5 | 2, 10, 0x48, 0x49})
	f.Add(testkit.LengthPrefixed([]byte{0x09, 0xf0}, testkit.SEINAL(f, false, cc1), []byte{0x65, 0x88}), byte(4), false, 0)
	f.Add(testkit.LengthPrefixed(testkit.SEINAL(f, false, testkit.CCData(p...)), []byte{0x41, 0x9a}), byte(4), false, 9)
	f.Add(testkit.LengthPrefixed([]byte{0x40, 0x01, 0x0c}, testkit.SEINAL(f, true, cc1), []byte{0x26, 0x01}), byte(4), true, 0)
	f.Add([]byte{0, 9, 0x06, 0x04, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x20}, byte(2), false, 3)
	valid := regexp.MustCompile(`^(CC[1-4]|SERVICE([1-9]|[1-5][0-9]|6[0-3]))$`)
	f.Fuzz(func(t *testing.T, data []byte, ls byte, hevc bool, cut int) {
		c := H264
		if hevc {
			c = HEVC
		}
		lengthSize := []int{1, 2, 4, 3}[ls%4]
		// Two access units, cut anywhere: a DTVCC packet may span them.
		cut = min(max(cut, 0), len(data))
		got := Detect(c, lengthSize, data[:cut], data[cut:])
		for i, ch := range got {
			if !valid.MatchString(ch) {
				t.Fatalf("channel %q", ch)
			}
			if i > 0 && slices.Index(got, ch) != i {
				t.Fatalf("%q twice in %q", ch, got)
			}
		}
		n, _ := Prefix(c, lengthSize, data, len(data))
		if n < 0 || n > len(data) {
			t.Fatalf("Prefix = %d of %d bytes", n, len(data))
		}
		if head, _ := Prefix(c, lengthSize, data[:n], len(data)); head != n {
			t.Fatalf("Prefix of the prefix = %d, want %d", head, n)
		}
		if whole, prefix := Detect(c, lengthSize, data), Detect(c, lengthSize, data[:n]); !slices.Equal(whole, prefix) {
			t.Fatalf("whole access unit: %q, its prefix: %q", whole, prefix)
		}
	})
}
