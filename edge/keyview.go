package edge

import (
	"net/http"
	"net/url"

	"github.com/reelvideo/reel/edge/cachekey"
)

// DeviceClassHeader is the request field that tells the origin the device class of a request
// whose rules key it (key_device_class): "mobile", "tablet" or "desktop" (cachekey.Classify).
const DeviceClassHeader = "Reel-Device-Class"

// keyedView is the request as the cache and the origin see it once its rules' key settings
// have taken the request's cookies and User-Agent down to what the key holds; the request
// itself when there is nothing to change (no allocation on the hit path of rules without
// those settings). Lookup (its Vary match, policy.VaryKey), the fill's origin request
// (upstream_request.go clones this header), storability and the stored Vary all read this
// one view, so that they agree on it:
//
//   - key_cookies: the Cookie field is rebuilt from the allowed cookies alone
//     (cachekey.Keyer.ForwardCookie), or removed when none is there. A cookie outside the key
//     never reaches the origin, so it can't shape what every client of the key gets; an
//     origin's Vary: Cookie is matched on the allowed cookies, one variant per keyed
//     combination; and a request whose cookies were all dropped is no longer credentialed
//     (policy.Storable): the origin never saw who asked.
//
//   - key_device_class: the User-Agent is replaced by the class's fixed one
//     (cachekey.DeviceClass.UserAgent) and Reel-Device-Class names the class. Forwarding the
//     client's User-Agent would let the origin answer Chrome on a Pixel differently from
//     Safari on an iPhone, and the first answer would go to the whole class: the origin must
//     see exactly what the key holds (CloudFront likewise sends "Amazon CloudFront" when the
//     User-Agent is not in the cache key). It also makes an origin's Vary: User-Agent one
//     variant per class, not one per User-Agent string.
//
//   - client_cache_control: ignore (the default): the request's Cache-Control and Pragma are
//     taken out, but only-if-cached (clientcc.go): a client's no-cache or no-store changes
//     nothing the cache does, and never reaches the origin. client_preconditions: ignore
//     (the default) takes out If-Match and If-Unmodified-Since the same way.
//
// A Reel-Device-Class the client sent itself is dropped whenever the edge may store the
// answer: it is not keyed, and an origin that reads it would let one client choose what a
// class gets. (The access log keeps the client's own fields: it reads the original request.)
func (e *Edge) keyedView(r *http.Request, rl *ruling) *http.Request {
	ru := rl.key
	cookies, device := ru.KeysCookies(), ru.KeysDeviceClass()
	_, spoofed := r.Header[DeviceClassHeader]
	h, directives := withoutClientDirectives(r, rl.client) // a copy when there were any
	if !cookies && !device && !spoofed && !directives {
		return r
	}
	if !directives {
		h = r.Header.Clone()
	}
	if cookies {
		if c, ok := e.keyer.ForwardCookie(r.Header, ru); ok {
			h["Cookie"] = []string{c}
		} else {
			delete(h, "Cookie")
		}
	}
	delete(h, DeviceClassHeader)
	if device {
		c := cachekey.Classify(field(r.Header, "User-Agent"))
		h["User-Agent"] = []string{c.UserAgent()}
		h[DeviceClassHeader] = []string{c.String()}
	}
	v := r.WithContext(r.Context()) // a shallow copy: same URL, body and connection state
	v.Header = h
	return v
}

// urlKeys are the cache keys stored for the URL u (absolute), for a purge by URL: its one key
// when its rules key nothing of the request but the URL, else every stored key whose URL part
// is its own — one per keyed cookie combination, device class or keyed header value — found
// by walking the tiers' keys, as a purge by prefix does. (An unsafe method's invalidation
// (forward.go) stays on the key of the request's own fields: walking every key on each POST
// would let clients make the edge do work in proportion to its whole cache.)
func (e *Edge) urlKeys(u *url.URL) []string {
	ru := e.rulingForURL(u).key
	key := e.keyer.KeyURL(u, nil, ru)
	if !ru.KeysRequest() {
		return []string{key}
	}
	base := cachekey.URLPart(key)
	return e.storedKeys(func(k string) bool { return cachekey.URLPart(k) == base })
}

// storedKeys are the keys the tiers hold (each once) that match says to take: a walk of every
// key, for purges by prefix or of every variant of a URL.
func (e *Edge) storedKeys(match func(key string) bool) []string {
	seen := map[string]bool{}
	var keys []string
	add := func(k string) {
		if match(k) && !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	for k := range e.tiers.mem.Keys() {
		add(k)
	}
	if e.tiers.disk != nil {
		for _, k := range e.tiers.disk.Keys() {
			add(k)
		}
	}
	return keys
}
