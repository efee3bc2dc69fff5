package policy

import (
	"net/http"
	"strings"
)

// entityTag is a parsed entity-tag (RFC 9110 §8.8.3): opaque excludes the quotes.
type entityTag struct {
	weak   bool
	opaque string
}

// parseEntityTag reads one entity-tag from the front of s, returning the rest.
func parseEntityTag(s string) (t entityTag, rest string, ok bool) {
	if strings.HasPrefix(s, "W/") {
		t.weak, s = true, s[2:]
	}
	if len(s) < 2 || s[0] != '"' {
		return entityTag{}, "", false
	}
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			t.opaque = s[1:i]
			return t, s[i+1:], true
		case c < 0x21 || c == 0x7f: // etagc = %x21 / %x23-7E / obs-text
			return entityTag{}, "", false
		}
	}
	return entityTag{}, "", false
}

// singleEntityTag parses a whole ETag field line.
func singleEntityTag(v string) (entityTag, bool) {
	t, rest, ok := parseEntityTag(strings.Trim(v, " \t"))
	return t, ok && rest == ""
}

// parseEntityTagList parses If-None-Match / If-Match: "*" or a list of entity-tags. Commas
// may sit inside an opaque-tag, so the list is parsed rather than split.
func parseEntityTagList(lines []string) (tags []entityTag, star, ok bool) {
	for _, line := range lines {
		s := strings.Trim(line, " \t")
		if s == "*" {
			star = true
			continue
		}
		for {
			s = strings.TrimLeft(s, " \t,")
			if s == "" {
				break
			}
			t, rest, good := parseEntityTag(s)
			if !good {
				return nil, false, false
			}
			tags = append(tags, t)
			rest = strings.TrimLeft(rest, " \t")
			if rest != "" && rest[0] != ',' {
				return nil, false, false
			}
			s = rest
		}
	}
	if star && len(tags) > 0 { // "*" cannot be mixed with tags
		return nil, false, false
	}
	return tags, star, star || len(tags) > 0
}

// weakMatch and strongMatch are RFC 9110 §8.8.3.2's comparison functions.
func weakMatch(a, b entityTag) bool { return a.opaque == b.opaque }
func strongMatch(a, b entityTag) bool {
	return !a.weak && !b.weak && a.opaque == b.opaque
}

// ConditionalRequestHeaders are the validators to send when revalidating a stored response
// (RFC 9111 §4.3.1): If-None-Match with its ETag and If-Modified-Since with its
// Last-Modified, each only when well formed. An empty result means the response has no
// validator, so "revalidating" is a plain fetch.
func ConditionalRequestHeaders(stored http.Header) http.Header {
	out := http.Header{}
	if et := stored.Get("ETag"); et != "" {
		if _, ok := singleEntityTag(et); ok {
			out.Set("If-None-Match", strings.Trim(et, " \t"))
		}
	}
	if _, ok := headerTime(stored, "Last-Modified"); ok {
		out.Set("If-Modified-Since", strings.TrimSpace(stored.Get("Last-Modified")))
	}
	return out
}

// notUpdatedBy304 are stored fields a 304 must not replace (RFC 9111 §3.2): Content-Length
// by name, and the fields describing the stored bytes, which the stored response depends on
// — a 304 cannot change the body they describe. Set-Cookie is kept out too: a 304 must never
// smuggle per-user state into the shared entry.
var notUpdatedBy304 = map[string]bool{
	"Content-Length": true, "Content-Encoding": true, "Content-Range": true,
	"Content-Type": true, "Set-Cookie": true, "Set-Cookie2": true,
}

// MergeNotModified updates a stored header from a 304 (RFC 9111 §4.3.4, §3.2) and returns the
// new header; neither argument is modified.
//
// ok is false when the 304 does not describe the stored response — its strong ETag differs,
// its weak ETag does not weakly match, or (without an ETag) its Last-Modified differs — and
// the caller must then fetch without conditionals instead (§4.3.4's selection). A 304 with
// no validator at all is accepted: it answers the conditional request built from this very
// response.
//
// Every field of the 304 replaces the stored field of that name, except hop-by-hop fields
// and those in notUpdatedBy304. Date and Age always come from the 304 (and are dropped when it
// has none), because age is measured from this validation, not the original fetch.
func MergeNotModified(stored, fresh http.Header) (http.Header, bool) {
	if !validatorsAgree(stored, fresh) {
		return nil, false
	}
	f := fresh.Clone()
	if f == nil {
		f = http.Header{}
	}
	RemoveHopByHop(f)
	out := stored.Clone()
	if out == nil {
		out = http.Header{}
	}
	out.Del("Date")
	out.Del("Age")
	for name, vals := range f {
		name = http.CanonicalHeaderKey(name)
		if notUpdatedBy304[name] {
			continue
		}
		out[name] = append([]string(nil), vals...)
	}
	return out, true
}

func validatorsAgree(stored, fresh http.Header) bool {
	if fv := fresh.Get("ETag"); fv != "" {
		ft, ok := singleEntityTag(fv)
		if !ok {
			return false
		}
		st, ok := singleEntityTag(stored.Get("ETag"))
		if !ok {
			return false
		}
		if ft.weak {
			return weakMatch(ft, st)
		}
		return strongMatch(ft, st)
	}
	if fv := fresh.Get("Last-Modified"); fv != "" {
		ft, ok1 := headerTime(fresh, "Last-Modified")
		st, ok2 := headerTime(stored, "Last-Modified")
		return ok1 && ok2 && ft.Equal(st)
	}
	return true
}

// NotModified reports whether a client's conditional GET or HEAD can be answered 304 from
// the stored response (RFC 9111 §4.3.2, RFC 9110 §13.1.2, §13.1.3, §13.2.2):
//
//   - only GET and HEAD, and only for a stored 2xx (RFC 9110 §13.2.1);
//   - If-Match and If-Unmodified-Since are origin-only preconditions a cache must not
//     evaluate (§4.3.2): with either present this reports false and the proxy should forward
//     the request;
//   - If-None-Match: "*" matches any stored representation; otherwise weak comparison with
//     the stored ETag; a malformed list matches nothing;
//   - If-Modified-Since, only without If-None-Match and only as one valid HTTP-date: not
//     modified when Last-Modified (or, lacking it, Date) is at or before it.
func NotModified(req *http.Request, stored Stored) bool {
	if req == nil || (req.Method != http.MethodGet && req.Method != http.MethodHead) {
		return false
	}
	if stored.Status < 200 || stored.Status > 299 {
		return false
	}
	if len(req.Header.Values("If-Match")) > 0 || len(req.Header.Values("If-Unmodified-Since")) > 0 {
		return false
	}
	if inm := req.Header.Values("If-None-Match"); len(inm) > 0 {
		tags, star, ok := parseEntityTagList(inm)
		if !ok {
			return false
		}
		if star {
			return true
		}
		st, ok := singleEntityTag(stored.Header.Get("ETag"))
		if !ok {
			return false
		}
		for _, t := range tags {
			if weakMatch(t, st) {
				return true
			}
		}
		return false
	}
	ims := req.Header.Values("If-Modified-Since")
	if len(ims) != 1 {
		return false
	}
	since, ok := parseDate(ims[0]) // RFC 9110 §13.1.3: not a valid HTTP-date → ignored
	if !ok {
		return false
	}
	mod, ok := headerTime(stored.Header, "Last-Modified")
	if !ok {
		if mod, ok = headerTime(stored.Header, "Date"); !ok {
			return false
		}
	}
	return !mod.After(since)
}
