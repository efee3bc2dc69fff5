package edge

import (
	"encoding/binary"
	"testing"

	"golang.org/x/net/http2"
)

// TestDedupeSettings: a SETTINGS payload with a repeated identifier keeps only its last value
// (HEADER_TABLE_SIZE: the smallest), earlier ones renamed to unknown identifiers; invalid values
// and payloads without repeats are left alone.
func TestDedupeSettings(t *testing.T) {
	type s struct {
		id  http2.SettingID
		val uint32
	}
	enc := func(ss ...s) []byte {
		b := make([]byte, 6*len(ss))
		for i, x := range ss {
			binary.BigEndian.PutUint16(b[i*6:], uint16(x.id))
			binary.BigEndian.PutUint32(b[i*6+2:], x.val)
		}
		return b
	}
	win, tbl, mfs := http2.SettingInitialWindowSize, http2.SettingHeaderTableSize, http2.SettingMaxFrameSize
	for _, tc := range []struct{ in, want []s }{
		{[]s{{win, 100}, {win, 1}}, []s{{0xf000, 100}, {win, 1}}},
		{[]s{{win, 100}, {mfs, 1 << 15}, {win, 7}, {win, 9}}, []s{{0xf000, 100}, {mfs, 1 << 15}, {0xf002, 7}, {win, 9}}},
		{[]s{{tbl, 0}, {tbl, 4096}}, []s{{0xf000, 0}, {tbl, 0}}},
		{[]s{{tbl, 4096}, {tbl, 100}}, []s{{0xf000, 4096}, {tbl, 100}}},
		{[]s{{win, 1 << 31}, {win, 1}}, []s{{win, 1 << 31}, {win, 1}}}, // invalid: refused as before
		{[]s{{win, 100}, {mfs, 1 << 15}}, []s{{win, 100}, {mfs, 1 << 15}}},
	} {
		b := enc(tc.in...)
		dedupeSettings(b)
		if got, want := b, enc(tc.want...); string(got) != string(want) {
			t.Errorf("%v: got % x, want % x", tc.in, got, want)
		}
	}
}

// TestH2RepeatedSettings: a SETTINGS frame naming INITIAL_WINDOW_SIZE twice is acknowledged
// and the last value applies (RFC 9113 §6.5.3; h2spec http2/6.5.3/1): with a window of 1
// byte, the body comes 1 byte per DATA frame.
func TestH2RepeatedSettings(t *testing.T) {
	o := newProtoOrigin(t)
	tlsEdge := startFrontend(t, o.URL, nil, nil)
	h2cEdge := startFrontend(t, o.URL, func(c *Config) { c.TLS = TLS{}; c.HTTP2.H2C = true }, nil)
	for _, fe := range []*frontEdge{tlsEdge, h2cEdge} {
		h := dialH2(t, fe, fe == tlsEdge)
		h.fr.WriteSettings(s2(http2.SettingInitialWindowSize, 100), s2(http2.SettingInitialWindowSize, 1))
		acked := false
		for !acked {
			switch f := h.read(t).(type) {
			case *http2.SettingsFrame:
				acked = f.IsAck()
			case *http2.GoAwayFrame:
				t.Fatalf("GOAWAY %v for a SETTINGS frame with a repeated identifier", f.ErrCode)
			}
		}
		h.request(t, 1, "/rs/obj", nil)
		for {
			f := h.read(t)
			if d, ok := f.(*http2.DataFrame); ok {
				if len(d.Data()) != 1 {
					t.Fatalf("first DATA frame of %d bytes, want 1 (INITIAL_WINDOW_SIZE's last value)", len(d.Data()))
				}
				break
			}
			if ga, ok := f.(*http2.GoAwayFrame); ok {
				t.Fatalf("GOAWAY %v", ga.ErrCode)
			}
		}
	}
}

func s2(id http2.SettingID, v uint32) http2.Setting { return http2.Setting{ID: id, Val: v} }
