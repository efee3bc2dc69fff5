package cachekey

import (
	"net/http"
	"slices"
	"strings"
)

// cookiePair is one cookie of a request's Cookie fields: pair as sent (outer whitespace
// trimmed), name the part before its first '=' (trailing whitespace trimmed; the whole pair
// when it has no '=').
type cookiePair struct {
	name, pair string
}

// keptCookies appends to dst the cookies of h that the rule's allow-list names, in canonical
// order: by name, stably, so that cookies of one name (RFC 6265 §5.4 lets a browser send
// several, longest path first) keep their order.
//
// The Cookie fields are read as RFC 6265 §5.4 writes them — cookie-pairs separated by ";"
// and a space — and as RFC 9113 §8.2.3 lets HTTP/2 (and HTTP/3) send them, split over several
// fields: every field counts, in order. Parsing is lenient the way servers are (whitespace
// around pairs, empty pairs, a pair without '='), and what is kept is each pair's bytes, so
// that the key holds exactly what ForwardCookie sends. The work is linear in the fields'
// size, which the server's header limit bounds.
func (ru *KeyRule) keptCookies(dst []cookiePair, h http.Header) []cookiePair {
	for _, line := range h["Cookie"] {
		for line != "" {
			var pair string
			pair, line, _ = strings.Cut(line, ";")
			pair = strings.Trim(pair, " \t")
			if pair == "" {
				continue
			}
			name, _, _ := strings.Cut(pair, "=")
			name = strings.TrimRight(name, " \t")
			if matchAny(ru.cookies, false, nil, name) {
				dst = append(dst, cookiePair{name: name, pair: pair})
			}
		}
	}
	if len(dst) > 1 {
		slices.SortStableFunc(dst, func(a, b cookiePair) int { return strings.Compare(a.name, b.name) })
	}
	return dst
}

// ForwardCookie returns the Cookie field to send upstream for a request with header h under
// rule (nil: the zero Rule), for a rule that keys cookies (KeyRule.KeysCookies): the
// cookie-pairs the allow-list names, in the key's order, joined by "; " into one field (RFC
// 6265 §5.4) — and ok false when there are none, so the field is left out. Every other cookie
// is dropped, as CloudFront's cookie allow-list does: a cookie the key doesn't hold, sent to
// the origin, could change the response every client of the key then gets. For a rule that
// doesn't key cookies it returns the request's fields joined, unchanged in substance.
func (k *Keyer) ForwardCookie(h http.Header, ru *KeyRule) (cookie string, ok bool) {
	if ru == nil {
		ru = k.def
	}
	if len(ru.cookies) == 0 {
		lines := h["Cookie"]
		return strings.Join(lines, "; "), len(lines) > 0
	}
	s := pool.Get().(*scratch)
	defer s.release()
	s.cookies = ru.keptCookies(s.cookies[:0], h)
	defer clear(s.cookies)
	if len(s.cookies) == 0 {
		return "", false
	}
	n := 2 * (len(s.cookies) - 1)
	for _, c := range s.cookies {
		n += len(c.pair)
	}
	var b strings.Builder
	b.Grow(n)
	for i, c := range s.cookies {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(c.pair)
	}
	return b.String(), true
}

// firstValue is h's first field line named name (canonical), or "".
func firstValue(h http.Header, name string) string {
	if v := h[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}
