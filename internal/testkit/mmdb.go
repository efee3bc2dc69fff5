package testkit

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

// WriteCountryDB writes a MaxMind DB (format 2.0, IPv6 tree with IPv4 at ::/96, 24-bit
// records: https://maxmind.github.io/MaxMind-DB/) mapping each network to a record
// {country: {iso_code: CC}}, as GeoLite2-Country holds, into a temporary file, and returns
// its path. No writer library is on the module proxy here, and the format is small: a binary
// trie of the address bits whose leaves point into a data section of typed values.
func WriteCountryDB(t testing.TB, networks map[string]string) string {
	t.Helper()
	type node struct {
		child [2]*node
		leaf  [2]int // data offset + 1 (0: none)
	}
	root := &node{}
	var data bytes.Buffer
	offsets := map[string]int{}
	for cidr, cc := range networks {
		p := netip.MustParsePrefix(cidr)
		a, bits := p.Addr(), p.Bits()
		if a.Is4() { // under ::a.b.c.d (not ::ffff:a.b.c.d), where readers look IPv4 up
			var a16 [16]byte
			a4 := a.As4()
			copy(a16[12:], a4[:])
			a, bits = netip.AddrFrom16(a16), bits+96
		}
		off, ok := offsets[cc]
		if !ok {
			off = data.Len()
			offsets[cc] = off
			mmdbMap(&data, 1)
			mmdbString(&data, "country")
			mmdbMap(&data, 1)
			mmdbString(&data, "iso_code")
			mmdbString(&data, cc)
		}
		b := a.As16()
		bit := func(i int) int { return int(b[i/8]>>(7-i%8)) & 1 }
		n := root
		for i := 0; i < bits-1; i++ {
			if n.child[bit(i)] == nil {
				n.child[bit(i)] = &node{}
			}
			n = n.child[bit(i)]
		}
		n.leaf[bit(bits-1)] = off + 1
	}
	// Number the nodes breadth first, then write each as two 24-bit records.
	nodes := []*node{root}
	index := map[*node]int{root: 0}
	for i := 0; i < len(nodes); i++ {
		for _, c := range nodes[i].child {
			if c != nil {
				index[c] = len(nodes)
				nodes = append(nodes, c)
			}
		}
	}
	count := len(nodes)
	var out bytes.Buffer
	for _, n := range nodes {
		for side := range 2 {
			v := count // no data
			switch {
			case n.child[side] != nil:
				v = index[n.child[side]]
			case n.leaf[side] != 0:
				v = count + 16 + n.leaf[side] - 1
			}
			out.Write([]byte{byte(v >> 16), byte(v >> 8), byte(v)})
		}
	}
	out.Write(make([]byte, 16)) // the data section separator
	out.Write(data.Bytes())
	out.WriteString("\xAB\xCD\xEFMaxMind.com")
	mmdbMap(&out, 9)
	mmdbString(&out, "node_count")
	mmdbUint(&out, 6, uint64(count))
	mmdbString(&out, "record_size")
	mmdbUint(&out, 5, 24)
	mmdbString(&out, "ip_version")
	mmdbUint(&out, 5, 6)
	mmdbString(&out, "database_type")
	mmdbString(&out, "Reel-Test-Country")
	mmdbString(&out, "languages")
	out.Write([]byte{0<<5 | 1, 11 - 7}) // an array (extended type 11) of one
	mmdbString(&out, "en")
	mmdbString(&out, "binary_format_major_version")
	mmdbUint(&out, 5, 2)
	mmdbString(&out, "binary_format_minor_version")
	mmdbUint(&out, 5, 0)
	mmdbString(&out, "build_epoch")
	mmdbUint(&out, 9, 1700000000)
	mmdbString(&out, "description")
	mmdbMap(&out, 1)
	mmdbString(&out, "en")
	mmdbString(&out, "test countries")
	file := filepath.Join(t.TempDir(), "countries.mmdb")
	if err := os.WriteFile(file, out.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// mmdbControl writes a control byte (and the extended type's byte) for a value of typ and
// size (under 29).
func mmdbControl(w *bytes.Buffer, typ, size int) {
	if typ <= 7 {
		w.WriteByte(byte(typ<<5 | size))
		return
	}
	w.Write([]byte{byte(size), byte(typ - 7)})
}

func mmdbString(w *bytes.Buffer, s string) {
	mmdbControl(w, 2, len(s))
	w.WriteString(s)
}

func mmdbMap(w *bytes.Buffer, pairs int) { mmdbControl(w, 7, pairs) }

// mmdbUint writes v as an unsigned integer of typ (5: uint16, 6: uint32, 9: uint64) in as
// few bytes as it needs.
func mmdbUint(w *bytes.Buffer, typ int, v uint64) {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	n := 8
	for n > 0 && b[8-n] == 0 {
		n--
	}
	mmdbControl(w, typ, n)
	w.Write(b[8-n:])
}
