package token

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

var (
	t0   = time.Unix(1_800_000_000, 0)
	k1   = []byte("0123456789abcdef0123456789abcdef")
	k2   = []byte("fedcba9876543210fedcba9876543210")
	keys = map[string][]byte{"k1": k1, "k2": k2, "": k1}
	ip   = netip.MustParseAddr("203.0.113.7")
)

func demo() Claims {
	return Claims{Expires: t0.Add(time.Hour), ACL: []string{"/live/demo/*"}}
}

func TestVerify(t *testing.T) {
	withStart := demo()
	withStart.Start = t0.Add(time.Minute)
	withIP := demo()
	withIP.IP = ip
	withIPv6 := demo()
	withIPv6.IP = netip.MustParseAddr("2001:db8::1")
	twoACLs := demo()
	twoACLs.ACL = []string{"/vod/a/*", "/vod/b/master.m3u8"}
	exact := Claims{Expires: t0.Add(time.Hour), URL: "/vod/a/master.m3u8"}
	good := Mint(demo(), "k1", k1)
	forged := good[:len(good)-1] + string("0123456789abcdef"[(strings.IndexByte("0123456789abcdef", good[len(good)-1])+1)%16])

	tests := []struct {
		why  string
		tok  string
		path string
		ip   netip.Addr
		now  time.Time
		want error
	}{
		{"a fresh token for a path under its ACL prefix verifies", good, "/live/demo/v0/seg_1.m4s", ip, t0, nil},
		{"the ACL prefix itself (the folder) matches", good, "/live/demo/", ip, t0, nil},
		{"a token without id verifies with the default key (keys[\"\"])", Mint(demo(), "", k1), "/live/demo/x", ip, t0, nil},
		{"a second key id verifies with its own key (rotation)", Mint(demo(), "k2", k2), "/live/demo/x", ip, t0, nil},
		{"a key id the verifier doesn't hold is refused", Mint(demo(), "k3", k1), "/live/demo/x", ip, t0, ErrUnknownKey},
		{"signed with another key than its id names", Mint(demo(), "k1", k2), "/live/demo/x", ip, t0, ErrSignature},
		{"the last hex digit of the hmac changed", forged, "/live/demo/x", ip, t0, ErrSignature},
		{"exp widened after signing", strings.Replace(good, "exp=18", "exp=19", 1), "/live/demo/x", ip, t0, ErrSignature},
		{"acl widened after signing", strings.Replace(good, "acl=/live/demo/*", "acl=/*", 1), "/secret", ip, t0, ErrSignature},
		{"valid until the second before exp", good, "/live/demo/x", ip, t0.Add(time.Hour - time.Second), nil},
		{"expired at exp", good, "/live/demo/x", ip, t0.Add(time.Hour), ErrExpired},
		{"before st: not yet valid", Mint(withStart, "k1", k1), "/live/demo/x", ip, t0, ErrNotYet},
		{"at st: valid", Mint(withStart, "k1", k1), "/live/demo/x", ip, t0.Add(time.Minute), nil},
		{"a path outside the ACL prefix", good, "/live/other/seg.m4s", ip, t0, ErrPath},
		{"a sibling sharing the prefix's letters but not its '/'", good, "/live/demos/x", ip, t0, ErrPath},
		{"second ACL entry, exact: matches", Mint(twoACLs, "k1", k1), "/vod/b/master.m3u8", ip, t0, nil},
		{"second ACL entry, exact: a longer path doesn't", Mint(twoACLs, "k1", k1), "/vod/b/master.m3u8x", ip, t0, ErrPath},
		{"first ACL entry, prefix: matches", Mint(twoACLs, "k1", k1), "/vod/a/v0/seg_1.m4s", ip, t0, nil},
		{"url= is exact: the url itself", Mint(exact, "k1", k1), "/vod/a/master.m3u8", ip, t0, nil},
		{"url= is exact: not what is under it", Mint(exact, "k1", k1), "/vod/a/master.m3u8/x", ip, t0, ErrPath},
		{"ip bound: the same address", Mint(withIP, "k1", k1), "/live/demo/x", ip, t0, nil},
		{"ip bound: the same address as an IPv4-mapped IPv6 address", Mint(withIP, "k1", k1), "/live/demo/x", netip.AddrFrom16(ip.As16()), t0, nil},
		{"ip bound: another address", Mint(withIP, "k1", k1), "/live/demo/x", netip.MustParseAddr("203.0.113.8"), t0, ErrIP},
		{"ip bound: no address known", Mint(withIP, "k1", k1), "/live/demo/x", netip.Addr{}, t0, ErrIP},
		{"ip bound, IPv6", Mint(withIPv6, "k1", k1), "/live/demo/x", netip.MustParseAddr("2001:db8::1"), t0, nil},
		{"empty token", "", "/live/demo/x", ip, t0, ErrMalformed},
		{"no hmac", "exp=1900000000~acl=/live/*", "/live/x", ip, t0, ErrMalformed},
		{"hmac too short", "exp=1900000000~acl=/live/*~hmac=abcd", "/live/x", ip, t0, ErrMalformed},
		{"hmac not hex", "exp=1900000000~acl=/live/*~hmac=" + strings.Repeat("z", 64), "/live/x", ip, t0, ErrMalformed},
		{"no exp", signedBy(k1, "acl=/live/*"), "/live/x", ip, t0, ErrMalformed},
		{"neither acl nor url", signedBy(k1, "exp=1900000000"), "/live/x", ip, t0, ErrMalformed},
		{"both acl and url", signedBy(k1, "exp=1900000000~acl=/live/*~url=/live/x"), "/live/x", ip, t0, ErrMalformed},
		{"exp with a sign", signedBy(k1, "exp=+1900000000~acl=/live/*"), "/live/x", ip, t0, ErrMalformed},
		{"a field twice", signedBy(k1, "exp=1900000000~exp=1~acl=/live/*"), "/live/x", ip, t0, ErrMalformed},
		{"an unknown field", signedBy(k1, "exp=1900000000~acl=/live/*~foo=1"), "/live/x", ip, t0, ErrMalformed},
		{"a field without '='", signedBy(k1, "exp=1900000000~acl=/live/*~x"), "/live/x", ip, t0, ErrMalformed},
		{"'*' inside an ACL entry", signedBy(k1, "exp=1900000000~acl=/live/*/x"), "/live/a/x", ip, t0, ErrMalformed},
		{"a bad ip", signedBy(k1, "ip=300.1.1.1~exp=1900000000~acl=/live/*"), "/live/x", ip, t0, ErrMalformed},
		{"hand-made, data signed too", signedBy(k1, "exp=1900000000~acl=/live/*~data=viewer42"), "/live/x", ip, t0, nil},
	}
	for _, tc := range tests {
		_, err := Verify(tc.tok, tc.path, tc.ip, tc.now, keys)
		if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("%s: Verify(%q, %q) = %v, want %v", tc.why, tc.tok, tc.path, err, tc.want)
		}
	}
}

// signedBy signs a hand-written field list, for tokens Mint would not make.
func signedBy(key []byte, fields string) string {
	return fields + hmacField + hexOf(sign(fields, key))
}

func hexOf(b []byte) string {
	const digits = "0123456789abcdef"
	s := make([]byte, 0, 2*len(b))
	for _, c := range b {
		s = append(s, digits[c>>4], digits[c&15])
	}
	return string(s)
}

// TestMintRoundTrip: what Mint writes, Verify reads back as it was given.
func TestMintRoundTrip(t *testing.T) {
	c := Claims{Start: t0, Expires: t0.Add(time.Hour), ACL: []string{"/a/*", "/b"}, IP: ip, Data: "v1"}
	tok := Mint(c, "k2", k2)
	if want := "ip=203.0.113.7~st=1800000000~exp=1800003600~acl=/a/*!/b~id=k2~data=v1~hmac="; !strings.HasPrefix(tok, want) {
		t.Fatalf("token %q, want it to start %q", tok, want)
	}
	got, err := Verify(tok, "/a/x", ip, t0, keys)
	if err != nil {
		t.Fatal(err)
	}
	c.KeyID = "k2"
	if !got.Start.Equal(c.Start) || !got.Expires.Equal(c.Expires) || strings.Join(got.ACL, "!") != "/a/*!/b" ||
		got.IP != c.IP || got.KeyID != "k2" || got.Data != "v1" {
		t.Errorf("claims %+v, want %+v", got, c)
	}
}

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		why string
		c   Claims
		ok  bool
	}{
		{"an ACL prefix and an expiry", demo(), true},
		{"no expiry", Claims{ACL: []string{"/a/*"}}, false},
		{"neither ACL nor URL", Claims{Expires: t0}, false},
		{"both ACL and URL", Claims{Expires: t0, ACL: []string{"/a/*"}, URL: "/a/b"}, false},
		{"'~' in the ACL would end the field", Claims{Expires: t0, ACL: []string{"/a~b/*"}}, false},
		{"'*' before the end of an ACL entry", Claims{Expires: t0, ACL: []string{"/a/*/b"}}, false},
		{"start not before expiry", Claims{Start: t0, Expires: t0, ACL: []string{"/a/*"}}, false},
		{"'~' in data", Claims{Expires: t0, ACL: []string{"/a/*"}, Data: "a~b"}, false},
	} {
		if err := tc.c.Check(); (err == nil) != tc.ok {
			t.Errorf("%s: Check() = %v", tc.why, err)
		}
	}
}

// FuzzVerify: Verify never panics on any input; a token minted from claims that pass Check
// always verifies for a path its ACL covers; and changing any one byte of its signed part is
// always refused.
func FuzzVerify(f *testing.F) {
	f.Add("exp=1800003600~acl=/live/demo/*~hmac=00", "/live/demo/x", int64(1800000000), int64(3600), "/live/demo/", "k1", uint8(3), uint8('x'))
	f.Add("", "", int64(0), int64(1), "/", "", uint8(0), uint8(0))
	f.Fuzz(func(t *testing.T, tok, path string, now, ttl int64, acl, keyID string, at, b byte) {
		Verify(tok, path, ip, time.Unix(now, 0), keys) // must not panic

		k := []byte("key of " + keyID)
		c := Claims{Start: time.Unix(now, 0), Expires: time.Unix(now, 0).Add(time.Duration(ttl%1e6+1) * time.Second),
			ACL: []string{acl + "*"}, IP: ip}
		if c.Check() != nil || strings.Contains(keyID, "~") || now < 0 || now > 1e11 {
			return
		}
		minted := Mint(c, keyID, k)
		ks := map[string][]byte{keyID: k}
		if _, err := Verify(minted, acl+"x", ip, c.Start, ks); err != nil {
			t.Fatalf("minted token %q does not verify: %v", minted, err)
		}
		signed := strings.LastIndex(minted, hmacField)
		i := int(at) % signed
		if minted[i] == b {
			return
		}
		changed := minted[:i] + string([]byte{b}) + minted[i+1:]
		if _, err := Verify(changed, acl+"x", ip, c.Start, ks); err == nil {
			t.Fatalf("token %q, byte %d changed from %q, verifies", changed, i, minted[i])
		}
	})
}

// BenchmarkVerify is one token's check, as the edge makes it on every request that needs one.
func BenchmarkVerify(b *testing.B) {
	tok := Mint(Claims{Expires: t0.Add(time.Hour), ACL: []string{"/live/demo/*"}, IP: ip}, "k1", k1)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Verify(tok, "/live/demo/v0/seg_1.m4s", ip, t0, keys); err != nil {
			b.Fatal(err)
		}
	}
}
