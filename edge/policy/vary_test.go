package policy

import (
	"net/http"
	"testing"
)

func TestNormalizeAcceptEncoding(t *testing.T) {
	// RFC 9110 §12.5.3 (Accept-Encoding), §12.4.2 (qvalues)
	for _, tc := range []struct {
		in   []string
		want string
	}{
		{nil, "identity"},
		{[]string{""}, "identity"},
		{[]string{"gzip, deflate, br, zstd"}, "br"},
		{[]string{"gzip"}, "gzip"},
		{[]string{"GZIP"}, "gzip"},
		{[]string{"deflate"}, "identity"},
		{[]string{"gzip", "br"}, "br"}, // several lines
		{[]string{"br;q=0, gzip"}, "gzip"},
		{[]string{"br;q=0.5, gzip;q=0.8"}, "gzip"},
		{[]string{"br;q=0.8, gzip;q=0.8"}, "br"}, // tie → preference order
		{[]string{"br ; q=1.0 , gzip"}, "br"},
		{[]string{"*"}, "br"},
		{[]string{"*;q=0.5, br;q=0"}, "gzip"},
		{[]string{"*;q=0"}, "identity"},
		{[]string{"identity;q=1, gzip;q=0.5"}, "identity"},
		{[]string{"identity;q=0.5, gzip;q=0.5"}, "gzip"},
		{[]string{"gzip;q=0, br;q=0"}, "identity"},
		{[]string{"gzip;q=2"}, "identity"},      // malformed qvalue: element ignored
		{[]string{"gzip;q=0.1234"}, "identity"}, // more than 3 decimals
		{[]string{"gzip;q=1.5"}, "identity"},
		{[]string{"gzip;q=abc, br"}, "br"},
		{[]string{"gzip, gzip;q=0"}, "identity"}, // repeated: the lower weight wins
		{[]string{"gzip;q=0, gzip"}, "identity"},
	} {
		if got := NormalizeAcceptEncoding(tc.in); got != tc.want {
			t.Errorf("NormalizeAcceptEncoding(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestVaryKey(t *testing.T) {
	type row struct {
		name string
		vary []string
		req  http.Header
	}
	key := func(r row) (string, bool) { return VaryKey(r.vary, r.req) }
	// RFC 9111 §4.1: Vary: * never matches
	for _, v := range [][]string{{"*"}, {"Accept, *"}, {"Accept", " * "}} {
		if _, ok := VaryKey(v, hdr()); ok {
			t.Errorf("VaryKey(%q) ok, want not ok", v)
		}
	}
	// RFC 9111 §4.1: no Vary → one variant
	if k, ok := VaryKey(nil, hdr("Accept", "x")); !ok || k != "" {
		t.Errorf("VaryKey(nil) = %q %v", k, ok)
	}
	// Pairs that must share a key (same variant) or not (different variants).
	for _, tc := range []struct {
		a, b row
		same bool
	}{
		// RFC 9111 §4.1 + RFC 9110 §12.5.3: Accept-Encoding normalised
		{row{"chrome", []string{"Accept-Encoding"}, hdr("Accept-Encoding", "gzip, deflate, br, zstd")},
			row{"br only", []string{"accept-encoding"}, hdr("Accept-Encoding", "br")}, true},
		{row{"gzip", []string{"Accept-Encoding"}, hdr("Accept-Encoding", "gzip")},
			row{"br", []string{"Accept-Encoding"}, hdr("Accept-Encoding", "br")}, false},
		{row{"absent", []string{"Accept-Encoding"}, hdr()},
			row{"identity", []string{"Accept-Encoding"}, hdr("Accept-Encoding", "identity")}, true},
		// RFC 9111 §4.1: field names are case-insensitive and order-independent
		{row{"order", []string{"Accept-Language, Origin"}, hdr("Origin", "https://a", "Accept-Language", "en")},
			row{"reversed", []string{"origin", "ACCEPT-LANGUAGE"}, hdr("Accept-Language", "en", "Origin", "https://a")}, true},
		// RFC 9111 §4.1: whitespace around values is not significant
		{row{"spaces", []string{"Accept-Language"}, hdr("Accept-Language", " en ")},
			row{"trimmed", []string{"Accept-Language"}, hdr("Accept-Language", "en")}, true},
		{row{"en", []string{"Accept-Language"}, hdr("Accept-Language", "en")},
			row{"fr", []string{"Accept-Language"}, hdr("Accept-Language", "fr")}, false},
		// RFC 9111 §4.1: an absent field only matches absence, not an empty value
		{row{"absent", []string{"X-Device"}, hdr()},
			row{"empty", []string{"X-Device"}, hdr("X-Device", "")}, false},
		// values cannot be forged to look like another field
		{row{"injection", []string{"A, B"}, hdr("A", "1\nB=2")},
			row{"other split", []string{"A, B"}, hdr("A", "1", "B", "2\nB!")}, false},
		// fields not listed in Vary do not matter
		{row{"unlisted 1", []string{"Accept"}, hdr("Accept", "a", "Cookie", "x")},
			row{"unlisted 2", []string{"Accept"}, hdr("Accept", "a", "Cookie", "y")}, true},
		// duplicate names in Vary are harmless
		{row{"dup", []string{"Accept, accept"}, hdr("Accept", "a")},
			row{"single", []string{"Accept"}, hdr("Accept", "a")}, true},
	} {
		ka, oka := key(tc.a)
		kb, okb := key(tc.b)
		if !oka || !okb || (ka == kb) != tc.same {
			t.Errorf("%s vs %s: keys %q / %q, same=%v, want %v", tc.a.name, tc.b.name, ka, kb, ka == kb, tc.same)
		}
	}
}
