package edge

import (
	"encoding/binary"
	"io"

	"golang.org/x/net/http2"
)

// Repeated identifiers in one SETTINGS frame, for x/net's HTTP/2 server.
//
// RFC 9113 §6.5.3: "The values in the SETTINGS frame MUST be processed in the order they
// appear, with no other frame processing between values", so a frame may carry one identifier
// twice (h2spec http2/6.5.3/1 sends SETTINGS_INITIAL_WINDOW_SIZE 100 then 1 and expects the
// ACK, then DATA frames of 1 byte). golang.org/x/net/http2's server instead hangs up on such a
// frame with a PROTOCOL_ERROR GOAWAY (server.go processSettings, "settings_big_or_dups": "This
// isn't actually in the spec, but hang up on suspiciously large settings frames or those with
// duplicate entries"). resetLimiter, which follows the frames before the server reads them,
// rewrites such a frame into one the server accepts with the same effect: every earlier entry
// of a repeated identifier becomes an unknown identifier, which a receiver MUST ignore (RFC
// 9113 §6.5.2), so only the last value applies — what processing them in order leaves for
// every setting whose value replaces the previous one. SETTINGS_HEADER_TABLE_SIZE is the
// exception: an encoder must use a table no larger than the smallest value it saw since its
// last header block (RFC 7541 §4.2), so its last entry gets the smallest value, which keeps the
// server's encoder within every limit the client announced. An invalid
// value (an INITIAL_WINDOW_SIZE above 2^31−1, …) is left where it is: the server hangs up on
// the frame either way. Frames of more than 100 settings are passed as they are (the server
// refuses those too).

const (
	frameTypeSettings  = 0x4
	flagSettingsAck    = 0x1
	maxSettingsRewrite = 100 * 6
	// unknownSettingBase is the first identifier given to a neutralised entry: none is
	// defined near it (RFC 9113 §6.5.2 and the IANA registry use small numbers).
	unknownSettingBase = 0xf000
)

// readSettings completes the SETTINGS payload whose first bytes are have (l.skip bytes in
// all) from the connection, rewrites it and returns it, with the error that cut it short.
func (l *resetLimiter) readSettings(have []byte) ([]byte, error) {
	buf := make([]byte, l.skip)
	k := copy(buf, have)
	if _, err := io.ReadFull(l.Conn, buf[k:]); err != nil {
		return nil, err
	}
	l.skip = 0
	dedupeSettings(buf)
	return buf, nil
}

// dedupeSettings rewrites a SETTINGS payload (6-byte entries) in place as above; a payload with
// no repeated identifier is left unchanged.
func dedupeSettings(b []byte) {
	n := len(b) / 6
	if n < 2 || len(b)%6 != 0 {
		return
	}
	id := func(i int) http2.SettingID { return http2.SettingID(binary.BigEndian.Uint16(b[i*6:])) }
	val := func(i int) uint32 { return binary.BigEndian.Uint32(b[i*6+2:]) }
	for i := 0; i < n; i++ {
		last := -1
		for j := i + 1; j < n; j++ {
			if id(j) == id(i) {
				last = j
			}
		}
		if last < 0 || (http2.Setting{ID: id(i), Val: val(i)}).Valid() != nil {
			continue
		}
		if id(i) == http2.SettingHeaderTableSize && val(i) < val(last) {
			binary.BigEndian.PutUint32(b[last*6+2:], val(i))
		}
		binary.BigEndian.PutUint16(b[i*6:], uint16(unknownSettingBase+i))
	}
}
