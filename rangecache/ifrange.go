package rangecache

import (
	"time"
)

// IfRange evaluates an If-Range field value (RFC 9110 §13.1.5) against the selected
// representation's validators — the ETag, Last-Modified and Date field values of the response
// that would be sent (for a cache: of the stored response) — and reports whether the Range header
// applies. An empty ifRange (no If-Range field) always lets it apply; when IfRange returns false
// the Range header must be ignored and the full representation sent.
//
// An entity-tag condition is true only by strong comparison (§8.8.3.2): both tags well-formed and
// not weak, and their opaque-tags identical — a weak tag on either side never matches.
//
// An HTTP-date condition is true only when the date is a strong validator and exactly matches
// Last-Modified (§13.1.5 steps 1-2; exact match, not the "earlier than or equal" of
// If-Unmodified-Since). Last-Modified is implicitly weak unless it can be deduced to be strong
// (§8.8.2.2): for a cache or origin comparing against a stored response, that takes a Date at
// least one second after Last-Modified, so a missing or unparsable date, or one less than a
// second later, makes the condition false. Dates are compared as instants, so the three HTTP-date
// formats (§5.6.7) are interchangeable.
func IfRange(ifRange string, etag, lastModified string, date string) bool {
	ir := trimOWS(ifRange)
	if ir == "" {
		return true
	}
	if ir[0] == '"' || (len(ir) > 1 && ir[0] == 'W' && ir[1] == '/') {
		// Identical strings: if one is a strong tag, so is the other.
		return isStrongETag(ir) && ir == trimOWS(etag)
	}
	t, ok := parseHTTPDate(ir)
	if !ok {
		return false
	}
	lm, ok := parseHTTPDate(trimOWS(lastModified))
	if !ok {
		return false
	}
	d, ok := parseHTTPDate(trimOWS(date))
	if !ok || d.Sub(lm) < time.Second {
		return false // Last-Modified not known to be strong (§8.8.2.2)
	}
	return t.Equal(lm)
}

// isStrongETag reports whether s is an entity-tag that is not weak: an opaque-tag
// (DQUOTE *etagc DQUOTE, etagc = %x21 / %x23-7E / obs-text; RFC 9110 §8.8.3).
func isStrongETag(s string) bool {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return false
	}
	for i := 1; i < len(s)-1; i++ {
		if c := s[i]; c < 0x21 || c == '"' || c == 0x7f {
			return false
		}
	}
	return true
}

// HTTP-date formats (RFC 9110 §5.6.7): IMF-fixdate, and the obsolete RFC 850 and asctime forms
// that recipients must accept.
var httpDateLayouts = [...]string{
	"Mon, 02 Jan 2006 15:04:05 GMT",
	"Monday, 02-Jan-06 15:04:05 GMT",
	"Mon Jan _2 15:04:05 2006",
}

func parseHTTPDate(s string) (time.Time, bool) {
	if s == "" {
		return time.Time{}, false
	}
	for _, layout := range httpDateLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}
