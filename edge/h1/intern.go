package h1

import "net/http"

// Header names and methods seen on nearly every request are interned, so parsing them
// allocates nothing; the map lookups with string(b) keys don't allocate either.
var commonKeys = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{
		"Accept", "Accept-Encoding", "Accept-Language", "Authorization", "Cache-Control",
		"Cdn-Loop", "Connection", "Content-Length", "Content-Type", "Cookie", "Expect",
		"Forwarded", "Host", "If-Match", "If-Modified-Since", "If-None-Match", "If-Range",
		"If-Unmodified-Since", "Origin", "Pragma", "Range", "Referer", "Te", "Transfer-Encoding",
		"Upgrade", "User-Agent", "Via", "X-Forwarded-For", "X-Forwarded-Host",
		"X-Forwarded-Proto", "X-Real-Ip", "X-Request-Id", "Sec-Fetch-Mode", "Sec-Fetch-Site",
		"Sec-Fetch-Dest", "Sec-Ch-Ua", "Sec-Ch-Ua-Mobile", "Sec-Ch-Ua-Platform", "Dnt",
		"Upgrade-Insecure-Requests", "Priority",
	} {
		m[k] = k
	}
	return m
}()

var methods = map[string]string{
	http.MethodGet: http.MethodGet, http.MethodHead: http.MethodHead, http.MethodPost: http.MethodPost,
	http.MethodPut: http.MethodPut, http.MethodDelete: http.MethodDelete, http.MethodPatch: http.MethodPatch,
	http.MethodOptions: http.MethodOptions, http.MethodConnect: http.MethodConnect, http.MethodTrace: http.MethodTrace,
}

func internMethod(b []byte) string {
	if string(b) == http.MethodGet { // nearly every request, without hashing
		return http.MethodGet
	}
	if m, ok := methods[string(b)]; ok {
		return m
	}
	return string(b)
}

// canonicalKey returns the canonical form of a header name (as net/textproto writes it:
// "content-type" → "Content-Type"), rewriting b in place. b must be a valid token.
func canonicalKey(b []byte) string {
	upper := true
	for i, c := range b {
		if upper && 'a' <= c && c <= 'z' {
			b[i] = c - ('a' - 'A')
		} else if !upper && 'A' <= c && c <= 'Z' {
			b[i] = c + ('a' - 'A')
		}
		upper = c == '-'
	}
	if k, ok := commonKeys[string(b)]; ok {
		return k
	}
	return string(b)
}
