package h1

import "net/http"

// Header names and methods seen on nearly every request are interned, so parsing them
// allocates nothing. A switch finds a name several times faster than a map lookup: the
// compiler turns it into a search on length, then content, with no hashing.
func commonKey(b []byte) (string, bool) {
	switch string(b) {
	case "Accept":
		return "Accept", true
	case "Accept-Encoding":
		return "Accept-Encoding", true
	case "Accept-Language":
		return "Accept-Language", true
	case "Authorization":
		return "Authorization", true
	case "Cache-Control":
		return "Cache-Control", true
	case "Cdn-Loop":
		return "Cdn-Loop", true
	case "Connection":
		return "Connection", true
	case "Content-Length":
		return "Content-Length", true
	case "Content-Type":
		return "Content-Type", true
	case "Cookie":
		return "Cookie", true
	case "Dnt":
		return "Dnt", true
	case "Expect":
		return "Expect", true
	case "Forwarded":
		return "Forwarded", true
	case "Host":
		return "Host", true
	case "If-Match":
		return "If-Match", true
	case "If-Modified-Since":
		return "If-Modified-Since", true
	case "If-None-Match":
		return "If-None-Match", true
	case "If-Range":
		return "If-Range", true
	case "If-Unmodified-Since":
		return "If-Unmodified-Since", true
	case "Origin":
		return "Origin", true
	case "Pragma":
		return "Pragma", true
	case "Priority":
		return "Priority", true
	case "Range":
		return "Range", true
	case "Referer":
		return "Referer", true
	case "Sec-Ch-Ua":
		return "Sec-Ch-Ua", true
	case "Sec-Ch-Ua-Mobile":
		return "Sec-Ch-Ua-Mobile", true
	case "Sec-Ch-Ua-Platform":
		return "Sec-Ch-Ua-Platform", true
	case "Sec-Fetch-Dest":
		return "Sec-Fetch-Dest", true
	case "Sec-Fetch-Mode":
		return "Sec-Fetch-Mode", true
	case "Sec-Fetch-Site":
		return "Sec-Fetch-Site", true
	case "Te":
		return "Te", true
	case "Transfer-Encoding":
		return "Transfer-Encoding", true
	case "Upgrade":
		return "Upgrade", true
	case "Upgrade-Insecure-Requests":
		return "Upgrade-Insecure-Requests", true
	case "User-Agent":
		return "User-Agent", true
	case "Via":
		return "Via", true
	case "X-Forwarded-For":
		return "X-Forwarded-For", true
	case "X-Forwarded-Host":
		return "X-Forwarded-Host", true
	case "X-Forwarded-Proto":
		return "X-Forwarded-Proto", true
	case "X-Real-Ip":
		return "X-Real-Ip", true
	case "X-Request-Id":
		return "X-Request-Id", true
	}
	return "", false
}

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
	if k, ok := commonKey(b); ok {
		return k
	}
	return string(b)
}
