package captions

import (
	"bytes"
	"slices"
	"testing"

	"github.com/Eyevinn/mp4ff/avc"
	"github.com/Eyevinn/mp4ff/hevc"
	"github.com/Eyevinn/mp4ff/sei"
	"github.com/reelvideo/reel/internal/testkit"
)

// field1 and field2 are cc_data with one CEA-608 pair per picture on a field, as encoders send
// them (the other field padded with nulls).
func field1(p [2]byte) []byte {
	return testkit.CCData(testkit.CCTriple{Type: 0, Valid: true, B1: p[0], B2: p[1]},
		testkit.CCTriple{Type: 1, Valid: true, B1: 0x80, B2: 0x80})
}

func field2(p [2]byte) []byte {
	return testkit.CCData(testkit.CCTriple{Type: 0, Valid: true, B1: 0x80, B2: 0x80},
		testkit.CCTriple{Type: 1, Valid: true, B1: p[0], B2: p[1]})
}

// h264AU is an access unit: an access unit delimiter, one SEI NAL unit per cc_data, and an IDR
// slice (whose bytes the scan never reads).
func h264AU(t *testing.T, ccs ...[]byte) []byte {
	nals := [][]byte{{0x09, 0xf0}}
	for _, cc := range ccs {
		nals = append(nals, testkit.SEINAL(t, false, cc))
	}
	return testkit.LengthPrefixed(append(nals, []byte{0x65, 0x88, 0x84, 0x00, 0x33})...)
}

// pictures608 turns CEA-608 pairs into one H.264 access unit each, on field 1 or 2.
func pictures608(t *testing.T, field func([2]byte) []byte, pairs [][2]byte) [][]byte {
	var out [][]byte
	for _, p := range pairs {
		out = append(out, h264AU(t, field(p)))
	}
	return out
}

// packet708 is a DTVCC packet (sequence 0) with the given service blocks, as cc_data
// constructs: cc_type 3 for its first two bytes, cc_type 2 for the rest, padded to its size.
func packet708(blocks ...[]byte) []testkit.CCTriple {
	data := []byte{0}
	for _, b := range blocks {
		data = append(data, b...)
	}
	if len(data)%2 == 1 {
		data = append(data, 0) // a null service block header ends the packet
	}
	data[0] = byte(len(data)/2) & 0x3f
	var out []testkit.CCTriple
	for i := 0; i < len(data); i += 2 {
		typ := byte(2)
		if i == 0 {
			typ = 3
		}
		out = append(out, testkit.CCTriple{Type: typ, Valid: true, B1: data[i], B2: data[i+1]})
	}
	return out
}

// block708 is a standard service block: service 1–6 with its data.
func block708(service int, data ...byte) []byte {
	return append([]byte{byte(service)<<5 | byte(len(data))}, data...)
}

// text708 is DefineWindow 0 … then "HI": enough bytes to be a caption's start.
var text708 = []byte{0x98, 0x38, 0x00, 0x00, 0x1f, 0x11, 0x0b, 0x48, 0x49}

func TestDetect(t *testing.T) {
	popOn := testkit.PopOn608(1, "HELLO")
	cases := []struct {
		name    string
		samples func(t *testing.T) [][]byte
		want    []string
	}{
		{"pop-on caption on CC1", func(t *testing.T) [][]byte { return pictures608(t, field1, popOn) }, []string{"CC1"}},
		{"pop-on caption on CC2 (field 1, data channel 2)", func(t *testing.T) [][]byte {
			return pictures608(t, field1, testkit.PopOn608(2, "HOLA"))
		}, []string{"CC2"}},
		{"CC3 and CC4 in field 2", func(t *testing.T) [][]byte {
			return append(pictures608(t, field2, testkit.PopOn608(3, "A")), pictures608(t, field2, testkit.PopOn608(4, "B"))...)
		}, []string{"CC3", "CC4"}},
		{"field 2 with field 1's control bytes (0x14)", func(t *testing.T) [][]byte {
			return pictures608(t, field2, [][2]byte{testkit.Pair608(0x14, 0x25)})
		}, []string{"CC3"}},
		{"roll-up on CC1 (RU2), paint-on on CC2 (RDC)", func(t *testing.T) [][]byte {
			return pictures608(t, field1, [][2]byte{testkit.Pair608(0x14, 0x25), testkit.Pair608('H', 'I'), testkit.Pair608(0x1c, 0x29)})
		}, []string{"CC1", "CC2"}},
		{"null padding only", func(t *testing.T) [][]byte {
			return pictures608(t, field1, slices.Repeat([][2]byte{testkit.Null608}, 30))
		}, nil},
		{"text mode (Text Restart, T1) is no caption", func(t *testing.T) [][]byte {
			return pictures608(t, field1, [][2]byte{testkit.Pair608(0x14, 0x2a), testkit.Pair608('H', 'I'), testkit.Pair608(0x14, 0x2b)})
		}, nil},
		{"characters and erasures without a caption command", func(t *testing.T) [][]byte {
			return pictures608(t, field1, append([][2]byte{testkit.Pair608('H', 'I')}, testkit.Erase608(1)...))
		}, nil},
		{"XDS in field 2", func(t *testing.T) [][]byte {
			return pictures608(t, field2, [][2]byte{testkit.Pair608(0x01, 0x03), testkit.Pair608('T', 'V'), testkit.Pair608(0x0f, 0x1d)})
		}, nil},
		{"control code with bad parity", func(t *testing.T) [][]byte {
			return pictures608(t, field1, [][2]byte{{0x14, 0x20}, {0x14, 0x20}})
		}, nil},
		{"cc_valid 0", func(t *testing.T) [][]byte {
			p := testkit.Pair608(0x14, 0x20)
			return [][]byte{h264AU(t, testkit.CCData(testkit.CCTriple{Type: 0, B1: p[0], B2: p[1]}))}
		}, nil},
		{"process_cc_data_flag 0", func(t *testing.T) [][]byte {
			cc := field1(testkit.Pair608(0x14, 0x20))
			cc[0] &^= 0x40
			return [][]byte{h264AU(t, cc)}
		}, nil},
		{"cc_count past the end of the message", func(t *testing.T) [][]byte {
			cc := field1(testkit.Pair608(0x14, 0x20))
			cc[0] |= 0x1f
			return [][]byte{h264AU(t, cc[:len(cc)-4])}
		}, []string{"CC1"}},
		{"CEA-708 service 1 over two pictures", func(t *testing.T) [][]byte {
			p := packet708(block708(1, text708...))
			return [][]byte{h264AU(t, testkit.CCData(p[:2]...)), h264AU(t, testkit.CCData(p[2:]...))}
		}, []string{"SERVICE1"}},
		{"CEA-708 services 2 and 10 (extended) in one packet, with CC1", func(t *testing.T) [][]byte {
			p := packet708(block708(2, 0x48), []byte{7<<5 | 2, 10, 0x48, 0x49})
			f1 := testkit.Pair608(0x14, 0x20)
			return [][]byte{h264AU(t, testkit.CCData(append([]testkit.CCTriple{{Type: 0, Valid: true, B1: f1[0], B2: f1[1]}}, p...)...))}
		}, []string{"CC1", "SERVICE2", "SERVICE10"}},
		{"CEA-708 NUL commands and null blocks only", func(t *testing.T) [][]byte {
			return [][]byte{h264AU(t, testkit.CCData(packet708(block708(3, 0, 0, 0))...))}
		}, nil},
		{"CEA-708 block longer than its packet", func(t *testing.T) [][]byte {
			p := packet708([]byte{1<<5 | 20, 0x48})
			return [][]byte{h264AU(t, testkit.CCData(p...))}
		}, nil},
		{"CEA-708 data without a packet start", func(t *testing.T) [][]byte {
			p := packet708(block708(1, text708...))
			return [][]byte{h264AU(t, testkit.CCData(p[1:]...))}
		}, nil},
		{"other T.35 user data (DirecTV provider 0x002F)", func(t *testing.T) [][]byte {
			payload := append([]byte{0xb5, 0x00, 0x2f, 0x03}, field1(testkit.Pair608(0x14, 0x20))...)
			nal, err := avc.CreateSEINalu([]sei.SEIMessage{sei.NewSEIData(sei.SEIUserDataRegisteredITUtT35Type, payload)})
			if err != nil {
				t.Fatal(err)
			}
			return [][]byte{testkit.LengthPrefixed(nal, []byte{0x65, 0x88})}
		}, nil},
		{"GA94 after an escaped message in the same SEI NAL unit", func(t *testing.T) [][]byte {
			zeros := sei.NewSEIData(sei.SEIUserDataUnregisteredType, make([]byte, 40))
			nal, err := avc.CreateSEINalu([]sei.SEIMessage{zeros, sei.CreateCTA608SEIMessage(field1(testkit.Pair608(0x14, 0x20)))})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(nal, []byte{0, 0, 3}) {
				t.Fatal("no emulation prevention byte in the test NAL unit")
			}
			return [][]byte{testkit.LengthPrefixed(nal, []byte{0x65, 0x88})}
		}, []string{"CC1"}},
		{"SEI after the first slice is not read", func(t *testing.T) [][]byte {
			return [][]byte{testkit.LengthPrefixed([]byte{0x65, 0x88}, testkit.SEINAL(t, false, field1(testkit.Pair608(0x14, 0x20))))}
		}, nil},
		{"captions late in a long track", func(t *testing.T) [][]byte {
			empty := h264AU(t, field1(testkit.Null608))
			return append(slices.Repeat([][]byte{empty}, 20000), pictures608(t, field1, popOn)...)
		}, []string{"CC1"}},
		{"no SEI at all", func(t *testing.T) [][]byte { return [][]byte{h264AU(t)} }, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Detect(H264, 4, tc.samples(t)...); !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestDetectHEVC: captions are in prefix SEI (type 39) before the slices; suffix SEI (type 40)
// is not where A/53 puts them.
func TestDetectHEVC(t *testing.T) {
	prefix := testkit.SEINAL(t, true, field1(testkit.Pair608(0x14, 0x20)))
	if got := hevc.NaluType(prefix[0] >> 1); got != hevc.NALU_SEI_PREFIX {
		t.Fatalf("mp4ff wrote HEVC NAL type %d", got)
	}
	idr := []byte{0x26, 0x01, 0xaf} // IDR_W_RADL slice
	vps := []byte{0x40, 0x01, 0x0c}
	if got := Detect(HEVC, 4, testkit.LengthPrefixed(vps, prefix, idr)); !slices.Equal(got, []string{"CC1"}) {
		t.Errorf("prefix SEI: got %q", got)
	}
	suffix := append([]byte{byte(hevc.NALU_SEI_SUFFIX) << 1, 0x01}, prefix[2:]...)
	if got := Detect(HEVC, 4, testkit.LengthPrefixed(vps, idr, suffix)); got != nil {
		t.Errorf("suffix SEI: got %q", got)
	}
	// The same bytes read as H.264 are no SEI.
	if got := Detect(H264, 4, testkit.LengthPrefixed(vps, prefix, idr)); got != nil {
		t.Errorf("HEVC read as H.264: got %q", got)
	}
}

// TestDetectReorder: a DTVCC packet cut over two pictures stored in decode order (the later
// shown first, as a B-frame's reference is) is read in presentation order.
func TestDetectReorder(t *testing.T) {
	p := packet708(block708(1, text708...))
	first := h264AU(t, testkit.CCData(p[:2]...))  // shown at 1
	second := h264AU(t, testkit.CCData(p[2:]...)) // shown at 2
	other := h264AU(t, field1(testkit.Null608))
	d := NewDetector(H264, 4)
	d.Sample(3, other)
	d.Sample(2, second) // decoded before the picture it follows
	d.Sample(1, first)
	if got := d.Channels(); !slices.Equal(got, []string{"SERVICE1"}) {
		t.Errorf("got %q, want SERVICE1", got)
	}
	// Without reordering, the continuation comes before its start and is dropped.
	if got := Detect(H264, 4, second, first); got != nil {
		t.Errorf("decode order read as presentation order: got %q", got)
	}
}

func TestPrefix(t *testing.T) {
	sei := testkit.SEINAL(t, false, field1(testkit.Pair608(0x14, 0x20)))
	au := testkit.LengthPrefixed([]byte{0x09, 0xf0}, sei, []byte{0x65, 0x88, 0x84})
	want := 4 + 2 + 4 + len(sei)
	cases := []struct {
		name       string
		lengthSize int
		head       []byte
		size       int
		n          int
		more       bool
	}{
		{"whole access unit", 4, au, len(au), want, false},
		{"head ends inside the SEI", 4, au[:10], len(au), 6, true},
		{"head ends inside a length", 4, au[:8], len(au), 6, true},
		{"head ends at the slice's length", 4, au[:want+2], len(au), want, true},
		{"head holds the slice's header", 4, au[:want+5], len(au), want, false},
		{"a NAL unit longer than the sample", 4, au[:10], 10, 6, false},
		{"2-byte lengths", 2, []byte{0, 2, 0x09, 0xf0, 0, 2, 0x65, 0x88}, 8, 4, false},
		{"bad length size", 3, au, len(au), 0, false},
		{"zero-length NAL unit", 4, []byte{0, 0, 0, 0, 0x65}, 5, 0, false},
		{"no slice", 4, au[:want], want, want, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n, more := Prefix(H264, tc.lengthSize, tc.head, tc.size)
			if n != tc.n || more != tc.more {
				t.Errorf("Prefix = %d, %v; want %d, %v", n, more, tc.n, tc.more)
			}
		})
	}
}
