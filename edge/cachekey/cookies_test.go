package cachekey

import (
	"net/http"
	"strings"
	"testing"
)

// cookieKey is the key of GET http://example.com/p with the given Cookie field lines (nil: no
// field) and User-Agent ("": none) under rule.
func cookieKey(t *testing.T, k *Keyer, rule Rule, ua string, cookies ...string) string {
	t.Helper()
	ru, err := k.Compile(rule)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	if cookies != nil {
		h["Cookie"] = cookies
	}
	if ua != "" {
		h.Set("User-Agent", ua)
	}
	return k.Key(rawReq("example.com", "/p", "", h), ru)
}

// TestKeyCookies: under a cookie allow-list, the key holds the named cookies whatever their
// order, however many other cookies come, and however HTTP/2 splits the field — and tells an
// absent cookie, an empty one and a value apart.
func TestKeyCookies(t *testing.T) {
	k, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	allow := Rule{Cookies: []string{"plan", "lang"}}
	glob := Rule{Cookies: []string{"ab_*"}}
	for _, tc := range []struct {
		name  string
		rule  Rule
		a, b  []string // Cookie field lines (nil: none)
		equal bool
	}{
		{"order of cookies", allow, []string{"lang=en; plan=pro"}, []string{"plan=pro; lang=en"}, true},
		{"un-keyed cookies", allow, []string{"lang=en"}, []string{"_ga=GA1.2.3; lang=en; session=s3cr3t"}, true},
		{"un-keyed only vs none", allow, []string{"_ga=1; session=x"}, nil, true},
		{"whitespace around pairs", allow, []string{"lang=en;plan=pro"}, []string{" lang=en ;  plan=pro "}, true},
		{"empty pairs", allow, []string{"lang=en;;; plan=pro;"}, []string{"lang=en; plan=pro"}, true},
		{"HTTP/2 split fields (RFC 9113 §8.2.3)", allow, []string{"lang=en", "x=1", "plan=pro"}, []string{"lang=en; x=1; plan=pro"}, true},
		{"keyed value differs", allow, []string{"lang=en"}, []string{"lang=fr"}, false},
		{"second keyed cookie differs", allow, []string{"lang=en; plan=free"}, []string{"lang=en; plan=pro"}, false},
		{"absent vs empty", allow, []string{"x=1"}, []string{"lang="}, false},
		{"empty vs no '='", allow, []string{"lang="}, []string{"lang"}, false},
		{"absent vs present", allow, nil, []string{"lang=en"}, false},
		{"name is case-sensitive", allow, []string{"lang=en"}, []string{"Lang=fr; lang=en"}, true}, // Lang is not lang
		{"repeated name keeps its order", allow, []string{"lang=en; lang=fr"}, []string{"lang=fr; lang=en"}, false},
		{"repeated vs single", allow, []string{"lang=en; lang=en"}, []string{"lang=en"}, false},
		{"value with '=' and ';' boundaries", allow, []string{"lang=a=b"}, []string{"lang=a; b"}, false},
		{"glob names", glob, []string{"ab_home=1; ab_cart=2"}, []string{"ab_cart=2; zz=9; ab_home=1"}, true},
		{"glob names differ", glob, []string{"ab_home=1"}, []string{"ab_home=2"}, false},
		{"no allow-list: cookies not keyed", Rule{}, []string{"lang=en"}, []string{"lang=fr"}, true},
	} {
		ka, kb := cookieKey(t, k, tc.rule, "", tc.a...), cookieKey(t, k, tc.rule, "", tc.b...)
		if tc.a == nil {
			ka = cookieKey(t, k, tc.rule, "")
		}
		if tc.b == nil {
			kb = cookieKey(t, k, tc.rule, "")
		}
		if (ka == kb) != tc.equal {
			t.Errorf("%s: %q → %q, %q → %q: equal %v, want %v", tc.name, tc.a, ka, tc.b, kb, ka == kb, tc.equal)
		}
	}
	// The allow-list's order doesn't matter either.
	if a, b := cookieKey(t, k, allow, "", "plan=1; lang=2"), cookieKey(t, k, Rule{Cookies: []string{"lang", "plan"}}, "", "plan=1; lang=2"); a != b {
		t.Errorf("allow-list order changed the key: %q, %q", a, b)
	}
	// The URL part stays as it was: a prefix purge of the URL still finds the entry.
	plain := cookieKey(t, k, Rule{}, "")
	if got := cookieKey(t, k, allow, "", "lang=en"); !strings.HasPrefix(got, plain+" ") {
		t.Errorf("keyed %q does not extend the URL's key %q", got, plain)
	}
}

// TestForwardCookie: the Cookie field sent upstream holds the allowed cookies alone, in the
// key's order, one field; none left means no field; and keying what is forwarded gives the
// same key as keying the client's request (the key holds exactly what the origin sees).
func TestForwardCookie(t *testing.T) {
	k, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	ru, err := k.Compile(Rule{Cookies: []string{"lang", "plan", "ab_*"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		in   []string
		want string
		ok   bool
	}{
		{[]string{"session=s; plan=pro; _ga=1; lang=en"}, "lang=en; plan=pro", true},
		{[]string{"plan=pro", "lang=en"}, "lang=en; plan=pro", true},
		{[]string{" lang = en ;plan="}, "lang = en; plan=", true},
		{[]string{"lang=fr; lang=en"}, "lang=fr; lang=en", true},
		{[]string{"ab_x=1; ab_a=2"}, "ab_a=2; ab_x=1", true},
		{[]string{"session=s; _ga=1"}, "", false},
		{nil, "", false},
	} {
		h := http.Header{}
		if tc.in != nil {
			h["Cookie"] = tc.in
		}
		got, ok := k.ForwardCookie(h, ru)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ForwardCookie(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
		fwd := http.Header{}
		if ok {
			fwd.Set("Cookie", got)
		}
		if a, b := k.Key(rawReq("h", "/", "", h), ru), k.Key(rawReq("h", "/", "", fwd), ru); a != b {
			t.Errorf("%q: client's key %q, forwarded request's %q", tc.in, a, b)
		}
	}
	// A rule without an allow-list leaves the cookies alone.
	if got, ok := k.ForwardCookie(http.Header{"Cookie": {"a=1", "b=2"}}, nil); got != "a=1; b=2" || !ok {
		t.Errorf("no allow-list: %q, %v", got, ok)
	}
	if _, err := k.Compile(Rule{Cookies: []string{`bad\`}}); err == nil || !strings.Contains(err.Error(), "key_cookies") {
		t.Errorf("malformed glob: %v", err)
	}
}

// TestKeyDeviceClass: under DeviceClass the key holds the class, not the User-Agent.
func TestKeyDeviceClass(t *testing.T) {
	k, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	dev := Rule{DeviceClass: true}
	iphone := "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"
	pixel := "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.144 Mobile Safari/537.36"
	ipad := "Mozilla/5.0 (iPad; CPU OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"
	mac := "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15"
	win := "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
	for _, tc := range []struct {
		name   string
		rule   Rule
		a, b   string
		equal  bool
		suffix string // of a's key
	}{
		{"two phones", dev, iphone, pixel, true, " :device=mobile"},
		{"phone vs tablet", dev, iphone, ipad, false, " :device=mobile"},
		{"two desktops", dev, mac, win, true, " :device=desktop"},
		{"no User-Agent is a desktop", dev, "", win, true, " :device=desktop"},
		{"tablet", dev, ipad, Mobile.UserAgent(), false, " :device=tablet"},
		{"the class's own User-Agent", dev, pixel, Mobile.UserAgent(), true, " :device=mobile"},
		{"off: User-Agent not keyed", Rule{}, iphone, ipad, true, "/p"},
	} {
		ka, kb := cookieKey(t, k, tc.rule, tc.a), cookieKey(t, k, tc.rule, tc.b)
		if (ka == kb) != tc.equal || !strings.HasSuffix(ka, tc.suffix) {
			t.Errorf("%s: %q, %q: equal %v (want %v), suffix want %q", tc.name, ka, kb, ka == kb, tc.equal, tc.suffix)
		}
	}
	// Cookies and class together, with a keyed header: each part stays apart.
	ru, _ := k.Compile(Rule{Cookies: []string{"lang"}, DeviceClass: true, Headers: []string{"Accept-Language"}})
	h := http.Header{"Cookie": {"lang=en"}, "User-Agent": {ipad}, "Accept-Language": {"en"}}
	if got, want := k.Key(rawReq("h", "/", "", h), ru), "http://h/ accept-language=2:en; :cookie=7:lang=en; :device=tablet"; got != want {
		t.Errorf("key %q, want %q", got, want)
	}
}

// TestKeyCookiesAllocs: keying cookies and the class costs no allocation beyond the key.
func TestKeyCookiesAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	k, _ := New(nil)
	ru, _ := k.Compile(Rule{Cookies: []string{"lang", "plan"}, DeviceClass: true})
	r := rawReq("example.com", "/a", "", http.Header{
		"Cookie":     {"_ga=GA1.2.3; plan=pro; session=abc; lang=en"},
		"User-Agent": {"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36"},
	})
	if n := testing.AllocsPerRun(200, func() { _ = k.Key(r, ru) }); n > 1 {
		t.Errorf("Key: %v allocations, want ≤ 1", n)
	}
}

// TestKeyHugeCookie: thousands of cookies cost time linear in their size and keep only what
// the allow-list names.
func TestKeyHugeCookie(t *testing.T) {
	k, _ := New(nil)
	ru, _ := k.Compile(Rule{Cookies: []string{"lang", "x*y*z*"}})
	var b strings.Builder
	for i := 0; i < 8000; i++ {
		b.WriteString("xaaaaaaaaaaaaaaaaaaaaaaaaay=1; ")
	}
	b.WriteString("lang=en")
	h := http.Header{"Cookie": {b.String()}}
	key := k.Key(rawReq("h", "/", "", h), ru)
	if want := "http://h/ :cookie=7:lang=en;"; key != want {
		t.Fatalf("key %q, want %q", key, want)
	}
	if fwd, _ := k.ForwardCookie(h, ru); fwd != "lang=en" {
		t.Fatalf("forwarded %q", fwd)
	}
}

// FuzzKeyCookies: whatever the Cookie fields and User-Agent, keying and forwarding never
// panic; the key of the forwarded request is the client's key (the key holds exactly what the
// origin sees); un-keyed cookies added anywhere change nothing; a keyed cookie's value, changed
// to one with other bytes, changes the key; the class is one of the three.
func FuzzKeyCookies(f *testing.F) {
	f.Add("lang=en; _ga=1", "plan=pro", "en", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) Mobile/15E148")
	f.Add(" lang = en ;;plan", "", "", "")
	f.Add("lang=\"a;b\"", "lang=x=y", "=", "Googlebot/2.1 (+http://www.google.com/bot.html)")
	f.Add(";;;", "\t", "\x00", "Android; Tablet")
	k, _ := New(nil)
	ru, err := k.Compile(Rule{Cookies: []string{"lang", "plan", "ab_*"}, DeviceClass: true})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, c1, c2, v, ua string) {
		h := http.Header{"Cookie": {c1, c2}, "User-Agent": {ua}}
		key := k.Key(rawReq("h", "/", "", h), ru)
		fwd, ok := k.ForwardCookie(h, ru)
		fh := http.Header{"User-Agent": {ua}}
		if ok {
			fh.Set("Cookie", fwd)
		}
		if got := k.Key(rawReq("h", "/", "", fh), ru); got != key {
			t.Fatalf("Cookie %q %q: key %q, forwarded %q keys as %q", c1, c2, key, fwd, got)
		}
		if again, _ := k.ForwardCookie(fh, ru); again != fwd {
			t.Fatalf("forwarding is not idempotent: %q then %q", fwd, again)
		}
		other := http.Header{"Cookie": {"zz=1; " + c1, c2 + "; _ga=" + strings.ReplaceAll(v, ";", "")}, "User-Agent": {ua}}
		if got := k.Key(rawReq("h", "/", "", other), ru); got != key {
			t.Fatalf("un-keyed cookies changed the key: %q → %q", key, got)
		}
		// A lang cookie appended with value v vs with value v+"x": the keys differ.
		clean := strings.NewReplacer(";", "", "\t", "", " ", "").Replace(v)
		a := http.Header{"Cookie": {c1, c2, "lang=" + clean}, "User-Agent": {ua}}
		b := http.Header{"Cookie": {c1, c2, "lang=" + clean + "x"}, "User-Agent": {ua}}
		if k.Key(rawReq("h", "/", "", a), ru) == k.Key(rawReq("h", "/", "", b), ru) {
			t.Fatalf("lang=%q and lang=%qx share a key", clean, clean)
		}
		if c := Classify(ua); c != Mobile && c != Tablet && c != Desktop {
			t.Fatalf("Classify(%q) = %d", ua, c)
		}
	})
}
