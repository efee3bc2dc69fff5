package captions

import (
	"slices"
	"strconv"
)

// reorderDepth is how many pictures the Detector holds to put cc_data back in presentation
// order. Captions are cut in display order but sit in pictures stored in decode order; a
// DTVCC packet spread over a B-frame and its reference would otherwise be read scrambled.
// Encoders reorder by a few pictures (x264's b-pyramid: 3); 16 is H.264's DPB at most.
const reorderDepth = 16

// Detector takes a video track's access units one by one and tells which caption channels
// and services they carry. The zero value is not usable: use NewDetector.
type Detector struct {
	codec      Codec
	lengthSize int

	pending  []picture // cc_data awaiting its turn, in presentation order
	cc608    [4]bool   // CC1–CC4
	services [64]bool  // CEA-708 services 1–63
	packet   dtvcc
}

// picture is one access unit's cc_data, kept until the ones shown before it are read.
type picture struct {
	pts int64
	cc  [][]byte
}

// NewDetector returns a Detector for a track of codec c whose NAL units have lengthSize-byte
// length prefixes (avcC/hvcC lengthSizeMinusOne + 1).
func NewDetector(c Codec, lengthSize int) *Detector {
	return &Detector{codec: c, lengthSize: lengthSize}
}

// Sample feeds one access unit's head (at least its first Prefix bytes; more is harmless)
// shown at pts (any unit, decode order). head is not kept.
func (d *Detector) Sample(pts int64, head []byte) {
	n, _ := Prefix(d.codec, d.lengthSize, head, len(head))
	cc := ccData(d.codec, d.lengthSize, head[:n])
	if len(cc) == 0 {
		return
	}
	for i, c := range cc {
		cc[i] = slices.Clone(c)
	}
	i, _ := slices.BinarySearchFunc(d.pending, pts, func(p picture, t int64) int {
		if p.pts <= t { // equal times keep decode order
			return -1
		}
		return 1
	})
	d.pending = slices.Insert(d.pending, i, picture{pts: pts, cc: cc})
	if len(d.pending) > reorderDepth {
		d.read(d.pending[0])
		d.pending = slices.Delete(d.pending, 0, 1)
	}
}

// Channels reads what is still pending and returns the channels found so far, as HLS
// INSTREAM-IDs: "CC1"–"CC4" (CEA-608), then "SERVICE1"–"SERVICE63" (CEA-708), in that order.
func (d *Detector) Channels() []string {
	for _, p := range d.pending {
		d.read(p)
	}
	d.pending = d.pending[:0]
	d.packet.flush(d)
	var out []string
	for i, ok := range d.cc608 {
		if ok {
			out = append(out, "CC"+strconv.Itoa(i+1))
		}
	}
	for s, ok := range d.services {
		if ok {
			out = append(out, "SERVICE"+strconv.Itoa(s))
		}
	}
	return out
}

// read walks one picture's cc_data() (A/53 Part 4 §6.2.3, CTA-708-E §4.4): a flags byte
// (process_cc_data_flag, cc_count), em_data, then cc_count constructs of marker bits,
// cc_valid, cc_type and two bytes.
func (d *Detector) read(p picture) {
	for _, cc := range p.cc {
		// process_cc_data_flag 0: the cc_data is to be ignored (A/53; ffmpeg does so too,
		// where mp4ff's sei.ParseCTA608 reads it anyway).
		if len(cc) < 2 || cc[0]&0x40 == 0 {
			continue
		}
		n := int(cc[0] & 0x1f)
		cc = cc[2:]
		for ; n > 0 && len(cc) >= 3; n, cc = n-1, cc[3:] {
			valid, typ := cc[0]&0x04 != 0, cc[0]&0x03
			if !valid {
				continue // padding (for CEA-708 also: cc_valid 0 ends nothing, it is filler)
			}
			switch typ {
			case 0, 1:
				d.cea608Pair(int(typ), cc[1], cc[2])
			case 3:
				d.packet.start(d, cc[1], cc[2])
			case 2:
				d.packet.add(d, cc[1], cc[2])
			}
		}
	}
}

// Detect is a Detector over whole access units given in presentation order: what the tests
// and the fuzz target call.
func Detect(c Codec, lengthSize int, samples ...[]byte) []string {
	d := NewDetector(c, lengthSize)
	for i, s := range samples {
		d.Sample(int64(i), s)
	}
	return d.Channels()
}
