package manifest

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/Eyevinn/dash-mpd/mpd"
)

// testKID is the KID of key period k in these tests: any function of k does.
func testKID(k uint64) [16]byte {
	var kid [16]byte
	sum := sha256.Sum256([]byte(fmt.Sprint("kid", k)))
	copy(kid[:], sum[:])
	return kid
}

func kidHex(k uint64) string    { kid := testKID(k); return hex.EncodeToString(kid[:]) }
func kidBase64(k uint64) string { kid := testKID(k); return base64.StdEncoding.EncodeToString(kid[:]) }

// withKeys adds key rotation every n segments to a live fixture: the periods of every listed
// segment, of the segment in progress, and of next (the coming period, when announced).
func withKeys(p *Presentation, n uint64, scheme string, next bool) *Presentation {
	v := p.Video[0]
	first, last := v.liveNext(), v.liveNext()
	if len(v.Segments) > 0 {
		first = v.Segments[0].Number
	}
	if next {
		last = (last/n + 1) * n
	}
	keys := &LiveKeys{Scheme: scheme}
	for k := first / n; k <= last/n; k++ {
		keys.Periods = append(keys.Periods, KeyPeriod{Index: k, FirstNumber: k * n, KID: testKID(k),
			InitURI: fmt.Sprintf("init-%d.mp4", k), Start: k * n * liveSegTicks, StartTimescale: videoTimescale})
	}
	p.Live.Keys = keys
	return p
}

// TestHLSLiveKeyRotation: with a key per 3 segments, a media playlist carries the ClearKey
// EXT-X-KEY (and the identity one for a key URI) and EXT-X-MAP of the first listed segment's
// period at its top and again exactly at the first segment of each later period — also before
// the parts of the segment in progress and before a preload hint that opens a new period — and
// parses back with hls-m3u8, each segment's key and map those of its period.
func TestHLSLiveKeyRotation(t *testing.T) {
	const n = 3
	for _, scheme := range []string{"cenc", "cbcs"} {
		t.Run(scheme, func(t *testing.T) {
			// Segments 10..17 complete, 18 in progress (two parts): periods 3 to 6.
			p := withKeys(liveFixture(liveSpec{first: 10, complete: 8, inProgress: 2, parts: true}), n, scheme, false)
			p.Live.Keys.KeyURI = "https://keys.example/{kid}"
			if err := p.Validate(); err != nil {
				t.Fatal(err)
			}
			for _, tr := range p.Tracks() {
				raw := p.HLSLiveMedia(tr, LiveMediaOptions{PreloadHint: "seg_18.2.m4s", PreloadHintNumber: 18})
				checkKeyRotation(t, raw, n, scheme, map[uint64]bool{10: true, 12: true, 15: true})
				// The segment in progress opens period 6: its tags come before its first part,
				// once (not again before the hint).
				body := string(raw)
				key6 := strings.Index(body, ClearKeyURI(testKID(6)))
				if part := strings.Index(body, `URI="seg_18.0.m4s"`); key6 < 0 || part < key6 || strings.Index(body, "seg_17.m4s") > key6 ||
					strings.Count(body, ClearKeyURI(testKID(6))) != 1 || strings.Count(body, "init-6.mp4") != 1 {
					t.Errorf("%s: period 6's key is not once between segment 17 and the first part of 18:\n%s", tr.ID, raw)
				}
				media, segs, _ := parseLive(t, raw)
				if len(segs) != 8 || media.SeqNo != 10 {
					t.Fatalf("%s: parsed %d segments from %d", tr.ID, len(segs), media.SeqNo)
				}
				for i, s := range segs {
					num := uint64(10 + i)
					boundary := i == 0 || num%n == 0
					if got := len(s.Keys) > 0; got != boundary {
						t.Errorf("%s: segment %d has keys %v, want a key change %v", tr.ID, num, s.Keys, boundary)
					}
					if !boundary {
						continue
					}
					wantURI := ClearKeyURI(testKID(num / n))
					var clear, identity bool
					for _, k := range s.Keys {
						clear = clear || k.Keyformat == ClearKeyFormat && k.URI == wantURI && k.Keyformatversions == "1"
						identity = identity || k.Keyformat == "identity" && k.URI == "https://keys.example/"+kidHex(num/n)
						if want := map[string]string{"cenc": "SAMPLE-AES-CTR", "cbcs": "SAMPLE-AES"}[scheme]; k.Method != want {
							t.Errorf("%s: segment %d: METHOD=%s, want %s", tr.ID, num, k.Method, want)
						}
					}
					if !clear || !identity {
						t.Errorf("%s: segment %d: keys %+v, want the ClearKey and identity keys of period %d", tr.ID, num, s.Keys, num/n)
					}
					if i > 0 && (s.Map == nil || s.Map.URI != fmt.Sprintf("init-%d.mp4", num/n)) {
						t.Errorf("%s: segment %d: map %+v, want init-%d.mp4", tr.ID, num, s.Map, num/n)
					}
				}
				if media.Map == nil || media.Map.URI != "init-3.mp4" {
					t.Errorf("%s: first map %+v, want init-3.mp4", tr.ID, media.Map)
				}
			}
		})
	}

	// A preload hint whose part opens the next period comes after that period's key and map,
	// which the player gives the hinted part; the announced period is listed before any of
	// its segments.
	p := withKeys(liveFixture(liveSpec{first: 10, complete: 8, parts: true}), n, "cbcs", true)
	raw := p.HLSLiveMedia(p.Video[0], LiveMediaOptions{PreloadHint: "seg_18.0.m4s", PreloadHintNumber: 18})
	body := string(raw)
	want := "#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"" + ClearKeyURI(testKID(6)) + "\",KEYFORMAT=\"org.w3.clearkey\",KEYFORMATVERSIONS=\"1\"\n" +
		"#EXT-X-MAP:URI=\"init-6.mp4\"\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"seg_18.0.m4s\"\n"
	if !strings.Contains(body, want) {
		t.Errorf("hint opening period 6: want\n%s\nin\n%s", want, raw)
	}
	parseLive(t, raw)
	// Without a hint, nothing of period 6 is listed.
	if raw := p.HLSLiveMedia(p.Video[0], LiveMediaOptions{}); strings.Contains(string(raw), "init-6.mp4") {
		t.Errorf("period 6 listed without any of its parts:\n%s", raw)
	}
}

// checkKeyRotation checks the raw playlist's EXT-X-KEY and EXT-X-MAP lines: a ClearKey key, an
// identity key and a map exactly before the segments in at (and the segment in progress),
// whose KID is their period's.
func checkKeyRotation(t *testing.T, raw []byte, n uint64, scheme string, at map[uint64]bool) {
	t.Helper()
	var pending []string
	seen := map[uint64]bool{}
	for _, l := range strings.Split(string(raw), "\n") {
		switch {
		case strings.HasPrefix(l, "#EXT-X-KEY:"), strings.HasPrefix(l, "#EXT-X-MAP:"):
			pending = append(pending, l)
		case strings.HasPrefix(l, "seg_"):
			var num uint64
			fmt.Sscanf(l, "seg_%d.m4s", &num)
			if at[num] {
				seen[num] = true
				k := num / n
				want := []string{
					"#EXT-X-KEY:METHOD=" + map[string]string{"cenc": "SAMPLE-AES-CTR", "cbcs": "SAMPLE-AES"}[scheme] +
						`,URI="https://keys.example/` + kidHex(k) + `",KEYFORMAT="identity"`,
					"#EXT-X-KEY:METHOD=" + map[string]string{"cenc": "SAMPLE-AES-CTR", "cbcs": "SAMPLE-AES"}[scheme] +
						`,URI="data:text/plain;base64,` + kidBase64(k) + `",KEYFORMAT="org.w3.clearkey",KEYFORMATVERSIONS="1"`,
					fmt.Sprintf(`#EXT-X-MAP:URI="init-%d.mp4"`, k),
				}
				if strings.Join(pending, "\n") != strings.Join(want, "\n") {
					t.Errorf("before segment %d:\n%s\nwant\n%s", num, strings.Join(pending, "\n"), strings.Join(want, "\n"))
				}
			} else if len(pending) > 0 {
				t.Errorf("key or map tags before segment %d, inside key period %d: %q", num, num/n, pending)
			}
			pending = nil
		}
	}
	for num := range at {
		if !seen[num] {
			t.Errorf("segment %d not found", num)
		}
	}
}

// TestDASHLiveKeyRotation: with a key per 3 segments, the dynamic MPD has one Period per key
// period (key rotation by Period), each with its KID in both adaptation sets' mp4protection
// ContentProtection, its own init segment, the segments of its period only, and a start and
// presentationTimeOffset that put every segment at its media time; it parses back with
// dash-mpd. A period some track has no segment in yet is not listed.
func TestDASHLiveKeyRotation(t *testing.T) {
	const n = 3
	p := withKeys(liveFixture(liveSpec{first: 10, complete: 7}), n, "cenc", true)
	m, raw := parseLiveMPD(t, p)
	if len(m.Periods) != 3 {
		t.Fatalf("%d Periods, want 3 (key periods 3, 4, 5; 6 has no segment)\n%s", len(m.Periods), raw)
	}
	for i, period := range m.Periods {
		k := uint64(3 + i)
		kp := KeyPeriod{KID: testKID(k)}
		if period.Id != fmt.Sprintf("key-%d", k) {
			t.Errorf("Period %d: id %q", i, period.Id)
		}
		start := ticksToDuration(k*n*liveSegTicks, videoTimescale)
		if period.Start == nil || (time.Duration(*period.Start)-start).Abs() > time.Microsecond {
			t.Errorf("Period %s: start %v, want %v", period.Id, period.Start, start)
		}
		if len(period.AdaptationSets) != 2 {
			t.Fatalf("Period %s: %d adaptation sets", period.Id, len(period.AdaptationSets))
		}
		for _, as := range period.AdaptationSets {
			var kid string
			for _, cp := range as.ContentProtections {
				if cp.SchemeIdUri == mp4ProtectionScheme {
					kid = cp.DefaultKID
					if cp.Value != "cenc" {
						t.Errorf("Period %s: scheme %q", period.Id, cp.Value)
					}
				}
			}
			if kid != kp.KIDUUID() {
				t.Errorf("Period %s, %s: default_KID %q, want %q", period.Id, as.ContentType, kid, kp.KIDUUID())
			}
			for _, r := range as.Representations {
				st := r.SegmentTemplate
				if st.Initialization != fmt.Sprintf("$RepresentationID$/init-%d.mp4", k) {
					t.Errorf("Period %s: init %q", period.Id, st.Initialization)
				}
				// Presentation time 0 of the Period is its start: PTO is the start in ticks.
				pto := presentationTimeOffset(big.NewRat(int64(k*n*liveSegTicks), videoTimescale), *st.Timescale)
				if st.PresentationTimeOffset == nil || *st.PresentationTimeOffset != pto {
					t.Errorf("Period %s, %s: presentationTimeOffset %v, want %d", period.Id, r.Id, st.PresentationTimeOffset, pto)
				}
				var tr *Track
				for _, x := range p.Tracks() {
					if x.ID == r.Id {
						tr = x
					}
				}
				want := *tr
				want.Segments = nil
				for _, s := range tr.Segments {
					if s.Number/n == k {
						want.Segments = append(want.Segments, s)
					}
				}
				checkTimeline(t, r, &want)
			}
		}
	}

	// Segment 18 of video only (audio's not there yet): period 6 waits for audio.
	p = withKeys(liveFixture(liveSpec{first: 10, complete: 9}), n, "cbcs", true)
	a := p.Audio[0]
	a.Segments, a.NextNumber = a.Segments[:len(a.Segments)-1], 18
	m, raw = parseLiveMPD(t, p)
	if len(m.Periods) != 3 || m.Periods[2].Id != "key-5" {
		t.Errorf("with period 6 on video only: %d periods\n%s", len(m.Periods), raw)
	}
	if !strings.Contains(raw, `value="cbcs"`) {
		t.Errorf("cbcs not signalled:\n%s", raw)
	}

	// An ended event is a static MPD of the same Periods, starting at the first listed segment.
	p = withKeys(liveFixture(liveSpec{first: 10, complete: 7}), n, "cenc", false)
	p.Live.Ended = true
	m, raw = parseLiveMPD(t, p)
	if *m.Type != mpd.STATIC_TYPE || len(m.Periods) != 3 {
		t.Fatalf("ended: %v with %d periods\n%s", *m.Type, len(m.Periods), raw)
	}
	// Period 3 starts with its first listed segment, 10, at zero.
	origin := ticksToDuration(10*liveSegTicks, videoTimescale)
	for i, period := range m.Periods {
		want := max(0, ticksToDuration(uint64(3+i)*n*liveSegTicks, videoTimescale)-origin)
		// dash-mpd reads xs:duration through a float: a microsecond's tolerance.
		if got := time.Duration(*period.Start); (got - want).Abs() > time.Microsecond {
			t.Errorf("ended: Period %s starts at %v, want %v", period.Id, got, want)
		}
	}
}

// TestValidateLiveKeys: key periods that go backwards, or miss a listed segment, are refused.
func TestValidateLiveKeys(t *testing.T) {
	p := withKeys(liveFixture(liveSpec{first: 10, complete: 4}), 3, "cenc", false)
	p.Live.Keys.Periods = p.Live.Keys.Periods[1:] // period 3 (segments 9..11) missing
	if err := p.Validate(); err == nil || !strings.Contains(err.Error(), "no key period") {
		t.Errorf("missing period: %v", err)
	}
	p = withKeys(liveFixture(liveSpec{first: 10, complete: 4}), 3, "cenc", false)
	p.Live.Keys.Periods[0], p.Live.Keys.Periods[1] = p.Live.Keys.Periods[1], p.Live.Keys.Periods[0]
	if err := p.Validate(); err == nil {
		t.Error("periods out of order accepted")
	}
	p = withKeys(liveFixture(liveSpec{first: 10, complete: 4}), 3, "aes", false)
	if err := p.Validate(); err == nil {
		t.Error("unknown scheme accepted")
	}
}
