package testkit

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/bits"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/Eyevinn/mp4ff/avc"
	"github.com/Eyevinn/mp4ff/hevc"
	"github.com/Eyevinn/mp4ff/sei"
)

// Closed captions for tests, made the way an encoder carries them: CEA-608 byte pairs and
// CEA-708 DTVCC packets in ATSC A/53 cc_data, in a GA94 user_data_registered_itu_t_t35 SEI
// message, in an SEI NAL unit (written by mp4ff, so that the bytes do not come from the
// parser under test). CaptionedMP4 puts them into a real H.264 stream made by ffmpeg.

// CCTriple is one cc_data construct: cc_type 0 (CEA-608 field 1), 1 (field 2), 2 (DTVCC packet
// data) or 3 (DTVCC packet start), and its two bytes.
type CCTriple struct {
	Type   byte
	Valid  bool
	B1, B2 byte
}

// CCData encodes cc_data(): process_cc_data_flag set, cc_count, em_data 0xFF, the triples and
// the marker byte 0xFF.
func CCData(triples ...CCTriple) []byte {
	out := []byte{0x40 | byte(len(triples)&0x1f), 0xff}
	for _, t := range triples {
		b := 0xf8 | t.Type&3
		if t.Valid {
			b |= 0x04
		}
		out = append(out, b, t.B1, t.B2)
	}
	return append(out, 0xff)
}

// SEINAL is an SEI NAL unit (H.264 type 6, or HEVC prefix SEI type 39) holding one GA94
// message with ccData.
func SEINAL(tb testing.TB, hevcNAL bool, ccData []byte) []byte {
	tb.Helper()
	msgs := []sei.SEIMessage{sei.CreateCTA608SEIMessage(ccData)}
	var nal []byte
	var err error
	if hevcNAL {
		nal, err = hevc.CreateSEINalu(msgs)
	} else {
		nal, err = avc.CreateSEINalu(msgs)
	}
	if err != nil {
		tb.Fatal(err)
	}
	return nal
}

// LengthPrefixed joins NAL units as an MP4 sample does, each after a 4-byte length.
func LengthPrefixed(nals ...[]byte) []byte {
	var out []byte
	for _, n := range nals {
		out = binary.BigEndian.AppendUint32(out, uint32(len(n)))
		out = append(out, n...)
	}
	return out
}

// Odd sets the CEA-608 parity bit of a 7-bit byte: every byte of a pair has odd parity.
func Odd(b byte) byte {
	if bits.OnesCount8(b&0x7f)%2 == 0 {
		return b&0x7f | 0x80
	}
	return b & 0x7f
}

// Pair608 is a CEA-608 byte pair with parity set.
func Pair608(c1, c2 byte) [2]byte { return [2]byte{Odd(c1), Odd(c2)} }

// Null608 is the padding pair 0x80 0x80 that fills a field when it has nothing to say.
var Null608 = [2]byte{0x80, 0x80}

// control is a miscellaneous control code (CEA-608 table 51) on channel 1–4 (CC1–CC4): its
// first byte says the field (0x14 or 0x15) and the data channel (+0x08).
func control(channel int, code byte) [2]byte {
	c1 := byte(0x14)
	if channel >= 3 {
		c1 = 0x15
	}
	if channel%2 == 0 {
		c1 |= 0x08
	}
	return Pair608(c1, code)
}

// PopOn608 is the byte pairs of a pop-on caption showing text (basic characters: letters,
// digits, space and plain punctuation) on row 15 of channel 1–4: Resume Caption Loading,
// Erase Non-displayed Memory, a preamble address code, the text, End Of Caption. Each control
// code is sent twice, as encoders do (decoders drop the repeat). The caption shows at the
// last pair.
func PopOn608(channel int, text string) [][2]byte {
	rcl, enm, eoc := control(channel, 0x20), control(channel, 0x2e), control(channel, 0x2f)
	pac := byte(0x14) // row 15, white
	if channel%2 == 0 {
		pac |= 0x08
	}
	out := [][2]byte{rcl, rcl, enm, enm, Pair608(pac, 0x60), Pair608(pac, 0x60)}
	for i := 0; i < len(text); i += 2 {
		c2 := byte(0)
		if i+1 < len(text) {
			c2 = text[i+1]
		}
		out = append(out, Pair608(text[i], c2))
	}
	return append(out, eoc, eoc)
}

// Erase608 is Erase Displayed Memory, sent twice: the shown caption goes away.
func Erase608(channel int) [][2]byte {
	edm := control(channel, 0x2c)
	return [][2]byte{edm, edm}
}

// CaptionedSample describes what CaptionedMP4 made.
type CaptionedSample struct {
	Path  string
	Text  string  // the caption shown on CC1
	Start float64 // when it shows (the first End Of Caption), in seconds
	End   float64 // when it goes (the first Erase Displayed Memory)
}

// CaptionedMP4 makes a real H.264 MP4 with CEA-608 captions on CC1 in dir: ffmpeg (libx264)
// encodes a 320x180 test pattern at 30 fps for seconds as an Annex B stream; a GA94 SEI NAL
// unit is put before each picture's first slice with that picture's cc_data — one field-1 pair
// (the pop-on caption's pairs in turn, else null padding) and a null field-2 pair, in every
// picture as broadcast does; then ffmpeg muxes it into MP4 with -c copy. The caption's pairs
// are sent before showAt seconds, when it shows; it is erased two seconds after. ffmpeg 5.1
// cannot put 608 from a caption file into a stream by itself, hence the splice. The stream has
// no B-frames, so decode order is display order and one picture's cc_data follows the last's.
func CaptionedMP4(tb testing.TB, dir, text string, seconds, showAt float64) CaptionedSample {
	tb.Helper()
	return captionedMP4(tb, dir, false, text, seconds, showAt)
}

// CaptionedHEVCMP4 is CaptionedMP4 in HEVC (libx265, hvc1), the captions in prefix SEI.
func CaptionedHEVCMP4(tb testing.TB, dir, text string, seconds, showAt float64) CaptionedSample {
	tb.Helper()
	return captionedMP4(tb, dir, true, text, seconds, showAt)
}

func captionedMP4(tb testing.TB, dir string, hevcStream bool, text string, seconds, showAt float64) CaptionedSample {
	tb.Helper()
	ffmpeg := RequireTool(tb, "ffmpeg")
	const fps = 30
	name, encoder, format := "h264", []string{"-c:v", "libx264", "-preset", "ultrafast", "-bf", "0", "-g", "60"}, "h264"
	if hevcStream {
		name, encoder, format = "hevc", []string{"-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "bframes=0:keyint=60:log-level=error"}, "hevc"
	}
	raw := filepath.Join(dir, "plain."+name)
	run(tb, ffmpeg, append(append([]string{"-v", "error", "-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=320x180:rate=%d:duration=%g", fps, seconds)},
		encoder...), "-pix_fmt", "yuv420p", "-f", format, raw)...)
	stream, err := os.ReadFile(raw)
	if err != nil {
		tb.Fatal(err)
	}

	pairs := PopOn608(1, text)
	// The caption shows at the first of its two End Of Caption pairs: at showAt.
	first := int(showAt*fps+0.5) - (len(pairs) - 2)
	if first < 0 {
		tb.Fatalf("caption %q needs %d pictures before %gs", text, len(pairs), showAt)
	}
	erase := int((showAt+2)*fps + 0.5)
	schedule := map[int][2]byte{}
	for i, p := range pairs {
		schedule[first+i] = p
	}
	for i, p := range Erase608(1) {
		schedule[erase+i] = p
	}
	pictures := 0
	spliced := SpliceBeforePictures(tb, hevcStream, stream, func(n int) []byte {
		pictures++
		f1, ok := schedule[n]
		if !ok {
			f1 = Null608
		}
		return SEINAL(tb, hevcStream, CCData(
			CCTriple{Type: 0, Valid: true, B1: f1[0], B2: f1[1]},
			CCTriple{Type: 1, Valid: true, B1: Null608[0], B2: Null608[1]}))
	})
	if pictures <= erase+1 {
		tb.Fatalf("ffmpeg made %d pictures; the caption needs %d", pictures, erase+2)
	}
	cc := filepath.Join(dir, "cc."+name)
	if err := os.WriteFile(cc, spliced, 0o644); err != nil {
		tb.Fatal(err)
	}
	out := filepath.Join(dir, "captioned_"+name+".mp4")
	args := []string{"-v", "error", "-framerate", fmt.Sprint(fps), "-f", format, "-i", cc, "-c", "copy"}
	if hevcStream {
		args = append(args, "-tag:v", "hvc1") // parameter sets in hvcC, as the packager expects
	}
	run(tb, ffmpeg, append(args, out)...)
	return CaptionedSample{Path: out, Text: text, Start: float64(first+len(pairs)-2) / fps, End: float64(erase) / fps}
}

// SpliceBeforePictures returns the H.264 (or HEVC) Annex B stream with the NAL unit nal(n) put
// before the first slice of the n-th picture (n from 0), after its access unit delimiter and
// parameter sets, where SEI (HEVC: prefix SEI) goes. A slice that starts a picture has
// first_mb_in_slice 0 (H.264: the ue(v) code "1") or first_slice_segment_in_pic_flag 1 (HEVC):
// the first bit after the NAL header set.
func SpliceBeforePictures(tb testing.TB, hevcStream bool, annexB []byte, nal func(n int) []byte) []byte {
	tb.Helper()
	startCode := []byte{0, 0, 1}
	var out bytes.Buffer
	n := 0
	for pos := 0; ; {
		i := bytes.Index(annexB[pos:], startCode)
		if i < 0 {
			out.Write(annexB[pos:])
			break
		}
		at := pos + i // the start code, its leading zero byte (4-byte form) already written
		out.Write(annexB[pos:at])
		hdr := at + len(startCode)
		if firstSlice(annexB[hdr:], hevcStream) {
			out.Write(startCode)
			out.Write(nal(n))
			out.Write([]byte{0}) // the next start code's leading zero
			n++
		}
		out.Write(startCode)
		pos = hdr
	}
	if n == 0 {
		tb.Fatal("no picture found in the stream")
	}
	return out.Bytes()
}

// firstSlice reports whether the NAL unit starting at b is a picture's first slice.
func firstSlice(b []byte, hevcStream bool) bool {
	if hevcStream {
		return len(b) > 2 && b[0]>>1&0x3f <= 31 && b[2]&0x80 != 0
	}
	return len(b) > 1 && (b[0]&0x1f == 1 || b[0]&0x1f == 5) && b[1]&0x80 != 0
}

func run(tb testing.TB, name string, args ...string) {
	tb.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		tb.Fatalf("%s %v: %v\n%s", filepath.Base(name), args, err, out)
	}
}
