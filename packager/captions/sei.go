// Package captions finds the closed captions a video track carries in its SEI: CEA-608
// (CTA-608) channels and CEA-708 (CTA-708) services in ATSC A/53 "GA94" cc_data, the way
// broadcast and most file workflows (ffmpeg's libx264 -a53cc, hardware encoders) carry them in
// H.264 and HEVC. It only tells which channels and services carry captions: players decode the
// captions themselves from the video; the packager signals them in the manifests.
//
// Everything here is a pure function of sample bytes, which come from outside: every length is
// checked against the bytes there are, and nothing allocates more than its input.
package captions

import (
	"bytes"

	"github.com/Eyevinn/mp4ff/sei"
)

// Codec tells how NAL unit headers read.
type Codec int

const (
	H264 Codec = iota // ISO/IEC 14496-10: one-byte NAL header, SEI is type 6
	HEVC              // ISO/IEC 23008-2: two-byte NAL header, prefix SEI is type 39
)

// ga94 starts the user_data_registered_itu_t_t35 payload of ATSC A/53 captions: country code
// 0xB5 (USA), provider code 0x0031 (ATSC), user identifier "GA94", user_data_type_code 3
// (cc_data). mp4ff names it CTA608ITUData, but the cc_data behind it carries CEA-708 as well.
var ga94 = sei.CTA608ITUData().Encode()

// nalKind is what the scan needs to know of a NAL unit.
type nalKind int

const (
	nalOther nalKind = iota
	nalSEI           // H.264 SEI, HEVC prefix SEI
	nalVCL           // a coded slice: the access unit's SEI all came before it
)

func (c Codec) headerLen() int {
	if c == HEVC {
		return 2
	}
	return 1
}

func (c Codec) kind(nal []byte) nalKind {
	if len(nal) < c.headerLen() {
		return nalOther
	}
	if c == HEVC {
		switch t := nal[0] >> 1 & 0x3f; {
		case t <= 31:
			return nalVCL
		case t == 39:
			return nalSEI
		}
		return nalOther
	}
	switch t := nal[0] & 0x1f; t {
	case 1, 2, 3, 4, 5, 20, 21: // slices, data partitions, SVC/MVC slice extensions
		return nalVCL
	case 6:
		return nalSEI
	}
	return nalOther
}

// Prefix walks the length-prefixed NAL units (lengthSize 1, 2 or 4 bytes, from avcC/hvcC) at
// the start of an access unit and returns how many bytes come before its first coded slice:
// the bytes that hold every SEI message the scan needs. H.264 requires SEI NAL units to
// precede the primary picture's first VCL NAL unit (§7.4.1.2.3), and HEVC prefix SEI — where
// A/53 captions go — to precede the access unit's first VCL NAL unit (§7.4.2.4.4); HEVC suffix
// SEI, after the slices, never carry them. So a scan reads an access unit's head, not its
// picture. more is true when head ends inside that prefix: read more of the sample and ask
// again. A sample that is nothing but non-VCL units gives len(head), false.
func Prefix(c Codec, lengthSize int, head []byte, sampleSize int) (n int, more bool) {
	if lengthSize != 1 && lengthSize != 2 && lengthSize != 4 {
		return 0, false
	}
	pos := 0
	for pos < sampleSize {
		if pos+lengthSize > len(head) {
			return pos, len(head) < sampleSize
		}
		size := 0
		for _, b := range head[pos : pos+lengthSize] {
			size = size<<8 | int(b)
		}
		end := pos + lengthSize + size
		if size < c.headerLen() || end > sampleSize {
			return pos, false // corrupt: what came before is all there is
		}
		if pos+lengthSize+c.headerLen() > len(head) {
			return pos, true
		}
		if c.kind(head[pos+lengthSize:]) == nalVCL {
			return pos, false
		}
		if end > len(head) {
			return pos, true
		}
		pos = end
	}
	return min(pos, len(head)), false
}

// ccData returns the cc_data() structures of the GA94 captions in the SEI NAL units of head
// (an access unit's prefix, as Prefix measures it). Other NAL units and SEI messages, and
// anything malformed, are skipped: a broken SEI costs its captions, never the scan.
func ccData(c Codec, lengthSize int, head []byte) [][]byte {
	var out [][]byte
	for pos := 0; pos+lengthSize <= len(head); {
		size := 0
		for _, b := range head[pos : pos+lengthSize] {
			size = size<<8 | int(b)
		}
		pos += lengthSize
		if size == 0 || size > len(head)-pos {
			break
		}
		nal := head[pos : pos+size]
		pos += size
		if c.kind(nal) == nalSEI {
			out = append(out, seiCCData(unescape(nal[c.headerLen():]))...)
		}
	}
	return out
}

// seiCCData walks the sei_message()s of an SEI RBSP (H.264 §7.3.2.3.1, HEVC §7.3.5) and
// returns the cc_data() of each GA94 user_data_registered_itu_t_t35 message. mp4ff's
// sei.ExtractSEIData does the same walk, but allocates each payload's claimed size before it
// knows the NAL unit holds it (0xFF bytes claim 255 each) and reads bit by bit; a few lines
// that check every size first are cheaper for bytes from outside.
func seiCCData(rbsp []byte) [][]byte {
	var out [][]byte
	pos := 0
	for pos < len(rbsp) && rbsp[pos] != 0x80 { // 0x80 alone: rbsp_trailing_bits
		typ, ok := seiValue(rbsp, &pos)
		if !ok {
			break
		}
		size, ok := seiValue(rbsp, &pos)
		if !ok || size > len(rbsp)-pos {
			break
		}
		payload := rbsp[pos : pos+size]
		pos += size
		if typ == sei.SEIUserDataRegisteredITUtT35Type && bytes.HasPrefix(payload, ga94) {
			out = append(out, payload[len(ga94):])
		}
	}
	return out
}

// seiValue reads payloadType or payloadSize: 0xFF bytes each add 255, the last byte the rest.
func seiValue(b []byte, pos *int) (int, bool) {
	v := 0
	for *pos < len(b) {
		x := b[*pos]
		*pos++
		v += int(x)
		if x != 0xff {
			return v, true
		}
	}
	return 0, false
}

// unescape removes the emulation_prevention_three_byte of 00 00 03 sequences (H.264 §7.4.1,
// HEVC §7.4.2): SEI payload sizes count the unescaped bytes. It copies only when it must.
func unescape(ebsp []byte) []byte {
	i := bytes.Index(ebsp, []byte{0, 0, 3})
	if i < 0 {
		return ebsp
	}
	out := make([]byte, 0, len(ebsp))
	zeros := 0
	for _, b := range ebsp {
		if zeros >= 2 && b == 3 {
			zeros = 0
			continue
		}
		if b == 0 {
			zeros++
		} else {
			zeros = 0
		}
		out = append(out, b)
	}
	return out
}
