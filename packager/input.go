package packager

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/Eyevinn/mp4ff/bits"
	"github.com/Eyevinn/mp4ff/mp4"
)

// maxHeaderBox bounds the boxes we decode into memory (moov, moof). Sample tables of a
// multi-hour progressive file fit easily; anything larger is a corrupt size field.
const maxHeaderBox = 256 << 20

// inputFile is one opened MP4 file: its moov and, for fragmented files, where the first
// fragment starts. Sample data is never loaded: segment writers copy it straight from the file.
type inputFile struct {
	path       string
	f          *os.File
	info       os.FileInfo // tells the same file given twice (openInputs)
	size       int64
	moov       *mp4.MoovBox
	fragmented bool
	firstMoof  int64 // offset of the first moof (fragmented files only)
	tracks     []*inputTrack
}

// topBox is a top-level box header found while scanning a file.
type topBox struct {
	typ  string
	pos  int64
	size int64 // whole box, header included
	hdr  int64 // header length
}

// readTopBox reads the box header at pos. It reports io.EOF at the exact end of the file and a
// truncation error when a box claims more bytes than the file holds.
func readTopBox(f io.ReaderAt, pos, fileSize int64) (topBox, error) {
	var buf [16]byte
	if pos == fileSize {
		return topBox{}, io.EOF
	}
	if fileSize-pos < 8 {
		return topBox{}, fmt.Errorf("truncated: %d stray bytes at offset %d", fileSize-pos, pos)
	}
	if _, err := f.ReadAt(buf[:8], pos); err != nil {
		return topBox{}, fmt.Errorf("reading box header at offset %d: %w", pos, err)
	}
	b := topBox{pos: pos, typ: string(buf[4:8]), hdr: 8}
	size := int64(binary.BigEndian.Uint32(buf[:4]))
	switch size {
	case 0: // box extends to the end of the file
		size = fileSize - pos
	case 1: // 64-bit largesize follows the type
		if _, err := f.ReadAt(buf[8:16], pos+8); err != nil {
			return topBox{}, fmt.Errorf("truncated: box %q at offset %d has no largesize", b.typ, pos)
		}
		ls := binary.BigEndian.Uint64(buf[8:16])
		if ls > uint64(fileSize) {
			return topBox{}, fmt.Errorf("truncated: box %q at offset %d claims %d bytes, file has %d", b.typ, pos, ls, fileSize)
		}
		size, b.hdr = int64(ls), 16
	}
	if !isBoxType(b.typ) {
		return topBox{}, fmt.Errorf("not an MP4 file: no box structure at offset %d", pos)
	}
	if size < b.hdr {
		return topBox{}, fmt.Errorf("corrupt box %q at offset %d: size %d", b.typ, pos, size)
	}
	if pos+size > fileSize {
		return topBox{}, fmt.Errorf("truncated: box %q at offset %d needs %d bytes, file ends after %d", b.typ, pos, size, fileSize-pos)
	}
	b.size = size
	return b, nil
}

// isBoxType accepts the four printable characters a real box type has; it is what tells an
// MP4 from a text file before mp4ff gets a chance to misread it.
func isBoxType(t string) bool {
	for i := 0; i < len(t); i++ {
		if t[i] < 0x20 || t[i] > 0x7e {
			return false
		}
	}
	return true
}

// decodeBox decodes one whole box (moov or moof) from the file. mp4ff panics on some corrupt
// inputs; the panic is turned into an error here so that it names the box and the offset.
func decodeBox(f io.ReaderAt, b topBox) (box mp4.Box, err error) {
	if b.size > maxHeaderBox {
		return nil, fmt.Errorf("box %q at offset %d is %d bytes, more than the %d we accept", b.typ, b.pos, b.size, maxHeaderBox)
	}
	data := make([]byte, b.size)
	if _, err := f.ReadAt(data, b.pos); err != nil {
		return nil, fmt.Errorf("reading box %q at offset %d: %w", b.typ, b.pos, err)
	}
	if err := checkBoxTree(data[b.hdr:], 0); err != nil {
		return nil, fmt.Errorf("corrupt box %q at offset %d: %w", b.typ, b.pos, err)
	}
	defer func() {
		if r := recover(); r != nil {
			box, err = nil, fmt.Errorf("corrupt box %q at offset %d: %v", b.typ, b.pos, r)
		}
	}()
	// The slice-reader decoder works on the bytes we already hold; mp4.DecodeBox would copy
	// the whole box once more.
	box, err = mp4.DecodeBoxSR(uint64(b.pos), bits.NewFixedSliceReader(data))
	if err != nil {
		return nil, fmt.Errorf("corrupt box %q at offset %d: %w", b.typ, b.pos, err)
	}
	return box, nil
}

// openInput opens an MP4 file, finds its moov and describes its tracks. Every error names the
// problem; the caller prefixes the file name.
func openInput(path string) (in *inputFile, err error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, errors.New("no such file")
		}
		return nil, err
	}
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	in = &inputFile{path: path, f: f, info: st, size: st.Size(), firstMoof: -1}
	if err := sniff(f, in.size); err != nil {
		return nil, err
	}
	if err := in.scan(); err != nil {
		return nil, err
	}
	if err := in.describeTracks(); err != nil {
		return nil, err
	}
	return in, nil
}

// scan walks the top-level boxes once: it needs the moov wherever it is (progressive files
// often keep it at the end) and the first moof of fragmented files.
func (in *inputFile) scan() error {
	var sawFtyp bool
	for pos, n := int64(0), 0; ; n++ {
		b, err := readTopBox(in.f, pos, in.size)
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if n == 0 && b.typ != "ftyp" && b.typ != "moov" && b.typ != "free" && b.typ != "skip" && b.typ != "styp" {
			return fmt.Errorf("not an MP4 file: starts with %q", b.typ)
		}
		switch b.typ {
		case "ftyp":
			sawFtyp = true
		case "moov":
			if in.moov != nil {
				return errors.New("corrupt: two moov boxes")
			}
			box, err := decodeBox(in.f, b)
			if err != nil {
				return err
			}
			moov, ok := box.(*mp4.MoovBox)
			if !ok {
				return errors.New("corrupt moov box")
			}
			in.moov = moov
		case "moof":
			if in.firstMoof < 0 {
				in.firstMoof = b.pos
			}
		}
		pos += b.size
	}
	if in.moov == nil {
		if !sawFtyp {
			return errors.New("not an MP4 file: no ftyp or moov box")
		}
		return errors.New("truncated or incomplete: no moov box")
	}
	in.fragmented = in.moov.Mvex != nil && in.firstMoof >= 0
	return nil
}

// sniff rejects files that do not start like an ISO BMFF file, before any size field of
// theirs is believed.
func sniff(f io.ReaderAt, size int64) error {
	var hdr [8]byte
	if size < 8 {
		return errors.New("not an MP4 file: too short")
	}
	if _, err := f.ReadAt(hdr[:], 0); err != nil {
		return err
	}
	switch string(hdr[4:8]) {
	case "ftyp", "styp", "moov", "free", "skip", "wide", "pdin", "mdat", "uuid", "sidx", "moof":
		return nil
	}
	return errors.New("not an MP4 file: no ftyp box at the start")
}

// Close releases the file.
func (in *inputFile) Close() error { return in.f.Close() }
