package fill

import "net/http"

// Request is the request a fill sends upstream on behalf of r: always a GET of the whole
// representation, without the client's own conditionals (RFC 9111 §4.3.2: the cache validates
// with its own validators; a client's If-Match must not decide what everyone else is served).
// A HEAD miss thus fills the GET it stands for, and a range miss the whole object (or the
// byte-range cache sets the one slice's Range on it).
func Request(r *http.Request) *http.Request {
	out := r.Clone(r.Context())
	out.Method = http.MethodGet
	for _, h := range []string{"Range", "If-Range", "If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since"} {
		out.Header.Del(h)
	}
	return out
}
