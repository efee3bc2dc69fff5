package edge

import (
	"bytes"
	"net/http"
	"strconv"
	"time"

	"github.com/reelvideo/reel/edge/cachestatus"
	"github.com/reelvideo/reel/edge/h2"
)

// h2HitBlock is a hit header's wire lines ("Name: value" CRLF each, see prepareHit) as an
// HPACK block for edge/h2, encoded once when the object is stored: literals that use no
// dynamic table, so the same bytes are valid on every connection (h2.EncodeStatic).
func h2HitBlock(wire []byte) []byte {
	var fields [][2]string
	for len(wire) > 0 {
		line, rest, _ := bytes.Cut(wire, []byte("\r\n"))
		wire = rest
		k, v, ok := bytes.Cut(line, []byte(": "))
		if !ok {
			return nil
		}
		fields = append(fields, [2]string{string(bytes.ToLower(k)), string(v)})
	}
	return h2.EncodeStatic(fields)
}

// h2HitWriter is edge/h2's writer under w for a hit of hh, or nil (not HTTP/2 through edge/h2,
// header rules to apply, or a writer between that rewrites the response: see asWireWriter).
func h2HitWriter(w http.ResponseWriter, r *http.Request, hh *hitHeader) h2.HitWriter {
	if r.ProtoMajor != 2 {
		return nil
	}
	if rw := measuring(w); rw != nil && rw.headers != nil {
		return nil // the rules' response_headers: through the header map (writeHead)
	}
	hw, _ := hitWriterUnder[h2.HitWriter](w, hh)
	return hw
}

// writeHitH2 is writeHitHead for edge/h2: the stored fields from obj.hit's HPACK block, our
// Via, Age and Cache-Status through the connection's encoder, the length declared.
func (e *Edge) writeHitH2(w http.ResponseWriter, hw h2.HitWriter, obj *cached, age time.Duration, cs cachestatus.Status) {
	hh := obj.hit
	cs.Cache = e.name
	v := cs.AppendTo([]byte(hh.csPrefix))
	hw.WriteHit(obj.Status, hh.h2, [][2]string{
		{"via", e.via},
		{"age", strconv.FormatInt(int64(age/time.Second), 10)},
		{"cache-status", string(v)},
	}, obj.Size, !hh.hasDate)
	setLabel(measuring(w), cs)
	w.WriteHeader(obj.Status)
}
