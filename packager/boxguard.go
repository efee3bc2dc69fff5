package packager

import (
	"encoding/binary"
	"fmt"
)

// mp4ff sizes its slices from the entry counts written in a box (stco, stsz, trun…) before it
// checks them against the box size, so a few corrupt bytes can make it allocate gigabytes.
// checkBoxTree walks a moov or moof we are about to decode and rejects any table whose entry
// count cannot fit in its box. This is the "check the sample tables first" guard of DESIGN.md.

// containers are the boxes whose payload is a list of child boxes.
var containers = map[string]int{ // value: bytes before the first child
	"moov": 0, "trak": 0, "mdia": 0, "minf": 0, "stbl": 0, "edts": 0, "mvex": 0, "dinf": 0,
	"moof": 0, "traf": 0, "udta": 0,
}

// tableEntry is the minimal size of one entry of a counted table and where its count sits.
type tableEntry struct {
	countAt   int // offset of the 32-bit entry count in the payload (after version/flags)
	entrySize int // bytes per entry (version 0)
}

var tables = map[string]tableEntry{
	"stts": {4, 8}, "ctts": {4, 8}, "stsc": {4, 12}, "stco": {4, 4}, "co64": {4, 8},
	"stss": {4, 4}, "stps": {4, 4}, "elst": {4, 12}, "dref": {4, 8}, "stsd": {4, 8},
}

func checkBoxTree(data []byte, depth int) error {
	if depth > 16 {
		return fmt.Errorf("boxes nested too deep")
	}
	for pos := 0; pos < len(data); {
		if len(data)-pos < 8 {
			return fmt.Errorf("%d stray bytes inside a box", len(data)-pos)
		}
		size := int(binary.BigEndian.Uint32(data[pos:]))
		typ := string(data[pos+4 : pos+8])
		hdr := 8
		if size == 1 {
			if len(data)-pos < 16 {
				return fmt.Errorf("box %q: truncated largesize", typ)
			}
			ls := binary.BigEndian.Uint64(data[pos+8:])
			if ls > uint64(len(data)-pos) {
				return fmt.Errorf("box %q claims %d bytes, its parent has %d", typ, ls, len(data)-pos)
			}
			size, hdr = int(ls), 16
		} else if size == 0 {
			size = len(data) - pos
		}
		if size < hdr || size > len(data)-pos {
			return fmt.Errorf("box %q has a bad size %d", typ, size)
		}
		payload := data[pos+hdr : pos+size]
		if skip, ok := containers[typ]; ok {
			if err := checkBoxTree(payload[skip:], depth+1); err != nil {
				return err
			}
		} else if err := checkTable(typ, payload); err != nil {
			return err
		}
		pos += size
	}
	return nil
}

func checkTable(typ string, p []byte) error {
	if len(p) < 4 {
		if _, counted := tables[typ]; counted || typ == "stsz" || typ == "trun" {
			return fmt.Errorf("box %q is too short", typ)
		}
		return nil
	}
	version := p[0]
	flags := binary.BigEndian.Uint32(p[0:4]) & 0xffffff
	need := func(countAt, entry int) error {
		if len(p) < countAt+4 {
			return fmt.Errorf("box %q is too short", typ)
		}
		n := uint64(binary.BigEndian.Uint32(p[countAt:]))
		if n*uint64(entry) > uint64(len(p)-countAt-4) {
			return fmt.Errorf("box %q claims %d entries, its %d bytes hold fewer", typ, n, len(p))
		}
		return nil
	}
	switch typ {
	case "stsz":
		if len(p) < 12 {
			return fmt.Errorf("box stsz is too short")
		}
		if binary.BigEndian.Uint32(p[4:]) == 0 { // per-sample sizes follow
			return need(8, 4)
		}
		return nil
	case "trun":
		entry := 0
		for _, bit := range []uint32{0x100, 0x200, 0x400, 0x800} {
			if flags&bit != 0 {
				entry += 4
			}
		}
		return need(4, entry)
	case "elst":
		if version == 1 {
			return need(4, 20)
		}
	}
	if t, ok := tables[typ]; ok {
		return need(t.countAt, t.entrySize)
	}
	return nil
}
