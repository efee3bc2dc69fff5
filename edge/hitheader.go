package edge

import (
	"net/http"
	"strings"

	"github.com/reelvideo/reel/edge/cachestatus"
	"github.com/reelvideo/reel/edge/store"
)

// hitHeader is a memory object's header prepared, once when it is stored, for full-body hits
// over HTTP/1.1: the fields every such hit sends unchanged are serialised into wire, so a hit
// neither copies the stored header map nor walks it again to write it. What changes per
// response — Age, Cache-Status — is appended to them in wire form too; only what the server
// needs for framing and its Date stays in the map.
type hitHeader struct {
	wire     []byte // "Name: value\r\n" lines, the stored Date, Via and Accept-Ranges included (our Via is added per hit: Edge.viaWire)
	hasDate  bool   // a Date is stored (else the server adds its own)
	csPrefix string // Cache-Status members of caches nearer the origin, each followed by ", "
	// ct is the stored Content-Type, for a request carrying a query token into manifests
	// (tokenrespond.go): a manifest's response can't go out pre-serialised.
	ct string
	// h2 is wire's fields HPACK-encoded for HTTP/2 hits (hith2.go).
	h2 []byte
}

// wireWriter is a ResponseWriter that takes header fields in wire form (edge/h1's): lines
// appended to *WireFields() go out after the fields of Header(), SetContentLength declares the
// length without a map field, and OmitDate keeps the server's Date out.
type wireWriter interface {
	WireFields() *[]byte
	SetContentLength(int64)
	OmitDate()
}

// notInWire are the stored fields a hit doesn't pass on as stored: internal tags, fields it
// sets per response, and fields the server manages.
var notInWire = map[string]bool{
	"Surrogate-Key": true, "Cache-Tag": true, "Content-Length": true, "Age": true,
	"Via": true, "Cache-Status": true, "Accept-Ranges": true, "Transfer-Encoding": true, "Connection": true,
}

// prepareHit builds o's hitHeader. It writes the same fields serveObject's map path would,
// in the same field lines (a stored Via's lines; the hit then adds ours).
func prepareHit(o *store.Object) *hitHeader {
	var b []byte
	for k, vs := range o.Header {
		if notInWire[k] || !validFieldName(k) {
			continue
		}
		for _, v := range vs {
			if strings.ContainsAny(v, "\r\n\x00") {
				return nil // leave odd values to the server's own sanitising
			}
			b = appendField(b, k, v)
		}
	}
	for _, v := range o.Header["Via"] {
		if strings.ContainsAny(v, "\r\n\x00") {
			return nil
		}
		b = appendField(b, "Via", v)
	}
	if o.Status == http.StatusOK {
		b = appendField(b, "Accept-Ranges", "bytes")
	}
	csPrefix := string(cachestatus.AppendPrefix(nil, o.Header))
	if strings.ContainsAny(csPrefix, "\r\n\x00") {
		return nil
	}
	_, hasDate := o.Header["Date"]
	return &hitHeader{wire: b, hasDate: hasDate, csPrefix: csPrefix, ct: o.Header.Get("Content-Type"), h2: h2HitBlock(b)}
}

func appendField(b []byte, k, v string) []byte {
	b = append(b, k...)
	b = append(b, ": "...)
	b = append(b, v...)
	return append(b, "\r\n"...)
}

func validFieldName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// asWireWriter finds a wireWriter under w's wrappers, for a hit of hh (hitWriterUnder).
func asWireWriter(w http.ResponseWriter, hh *hitHeader) wireWriter {
	ww, _ := hitWriterUnder[wireWriter](w, hh)
	return ww
}

// hitWriterUnder finds a writer of type W (a front server's hit path: wireWriter for
// edge/h1, h2.HitWriter for edge/h2) under w's wrappers, for a hit of hh: none under a
// manifestWriter when hh may be a manifest's, whose header and body it may rewrite.
func hitWriterUnder[W any](w http.ResponseWriter, hh *hitHeader) (W, bool) {
	var none W
	for {
		if hw, ok := w.(W); ok {
			return hw, true
		}
		if m, ok := w.(*manifestWriter); ok {
			if hh == nil || manifestType(hh.ct, m.r.URL.Path) {
				return none, false
			}
			m.wired = true // and it passes the response through
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return none, false
		}
		w = u.Unwrap()
	}
}
