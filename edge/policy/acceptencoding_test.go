package policy

import "testing"

// TestNormalizeAcceptEncodingCases: RFC 9110 §12.5.3 — q-values, "*", identity;q=0, x-gzip,
// repeated codings (the lower q), brotli on ties; and no allocation (it runs on every hit of a
// compressible object).
func TestNormalizeAcceptEncodingCases(t *testing.T) {
	for _, tc := range []struct {
		lines []string
		want  string
	}{
		{nil, "identity"},
		{[]string{""}, "identity"},
		{[]string{"gzip, deflate, br, zstd"}, "br"},
		{[]string{"gzip;q=1, br;q=1.000"}, "br"},
		{[]string{"br;q=0.9, gzip"}, "gzip"},
		{[]string{"x-gzip"}, "gzip"},
		{[]string{"GZIP"}, "gzip"},
		{[]string{"*"}, "br"},
		{[]string{"*;q=0.3, br;q=0"}, "gzip"},
		{[]string{"*;q=0"}, "identity"},
		{[]string{"identity;q=0"}, "identity"},
		{[]string{"br;q=0.5, identity"}, "identity"},
		{[]string{"br;q=0.5, identity;q=0.5"}, "br"},
		{[]string{"br, br;q=0.1, gzip;q=0.5"}, "gzip"},
		{[]string{"br;q=1.5, gzip;q=0.2"}, "gzip"}, // malformed q: that element ignored
		{[]string{"br;q=", "gzip"}, "gzip"},
		{[]string{" , ;q=1, gzip ; q=0.7 "}, "gzip"},
		{[]string{"deflate", "compress"}, "identity"},
	} {
		if got := NormalizeAcceptEncoding(tc.lines); got != tc.want {
			t.Errorf("%q: %q, want %q", tc.lines, got, tc.want)
		}
	}
	lines := []string{"gzip, deflate, br;q=0.9, zstd", "identity;q=0.1"}
	if n := testing.AllocsPerRun(100, func() { NormalizeAcceptEncoding(lines) }); n != 0 {
		t.Fatalf("%v allocations per call", n)
	}
}
