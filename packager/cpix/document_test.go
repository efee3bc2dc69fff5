package cpix

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"github.com/reelvideo/reel/manifest"
)

const (
	videoKID = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"
	audioKID = "f0e1d2c3-b4a5-4968-8776-655443322110"
)

func sample(t testing.TB) []byte {
	t.Helper()
	data, err := os.ReadFile("testdata/ladder.cpix.xml")
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestParseSample: the sample document gives two keys with their IVs and scheme, five DRM
// systems per key with what each carries, and the usage rules send video and audio to their
// own keys.
func TestParseSample(t *testing.T) {
	d, err := Parse(bytes.NewReader(sample(t)))
	if err != nil {
		t.Fatal(err)
	}
	if d.ContentID != "reel-sample-ladder" || d.Version != "2.3" || len(d.Keys) != 2 || len(d.Systems) != 10 || len(d.Rules) != 2 {
		t.Fatalf("parsed %+v", d)
	}
	v := d.Keys[0]
	if v.KID.String() != videoKID || hex.EncodeToString(v.Key) != "5d2e7c1a9f3b4e8d6a0c2b1f7e9d3a5c" ||
		hex.EncodeToString(v.ExplicitIV) != "00112233445566778899aabbccddeeff" || v.Scheme != "cbcs" {
		t.Errorf("video key %s %x %x %s", v.KID, v.Key, v.ExplicitIV, v.Scheme)
	}
	if s, err := d.Scheme(); s != "cbcs" || err != nil {
		t.Errorf("Scheme() = %q, %v", s, err)
	}
	for typ, want := range map[manifest.Kind]string{manifest.Video: videoKID, manifest.Audio: audioKID} {
		k, err := d.Key(typ, "")
		if err != nil || k.KID.String() != want {
			t.Errorf("Key(%s) = %v, %v; want %s", typ, k, err, want)
		}
	}
	systems := d.SystemsFor(d.Keys[1].KID)
	if len(systems) != 5 {
		t.Fatalf("%d systems for the audio key", len(systems))
	}
	got := map[KID]DRMSystem{}
	for _, s := range systems {
		got[s.SystemID] = s
	}
	if len(got[Widevine].PSSH) == 0 || len(got[PlayReady].PSSH) == 0 || len(got[W3CCommon].PSSH) == 0 {
		t.Error("a PSSH is missing")
	}
	if !strings.HasPrefix(got[PlayReady].ContentProtectionData, `<pssh xmlns="urn:mpeg:cenc:2013">`) {
		t.Errorf("PlayReady ContentProtectionData %.60q", got[PlayReady].ContentProtectionData)
	}
	if got[FairPlay].URIExtXKey != "skd://fairplay.example/f0e1d2c3b4a549688776655443322110" {
		t.Errorf("FairPlay URIExtXKey %q", got[FairPlay].URIExtXKey)
	}
	if !strings.Contains(got[ClearKey].ContentProtectionData, "https://clearkey.example/license") {
		t.Errorf("ClearKey ContentProtectionData %q", got[ClearKey].ContentProtectionData)
	}
	if p, err := d.VODPeriod(); p != "" || err != nil {
		t.Errorf("VODPeriod() = %q, %v", p, err)
	}
}

// doc builds a small document around body (the lists inside CPIX).
func doc(body string) string {
	return `<?xml version="1.0"?><CPIX xmlns="urn:dashif:org:cpix" xmlns:pskc="urn:ietf:params:xml:ns:keyprov:pskc">` + body + `</CPIX>`
}

func key(kid, attrs, value string) string {
	return `<ContentKey kid="` + kid + `" ` + attrs + `><Data><pskc:Secret><pskc:PlainValue>` + value + `</pskc:PlainValue></pskc:Secret></Data></ContentKey>`
}

var key16 = base64.StdEncoding.EncodeToString([]byte("0123456789abcdef"))

func b64s(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// TestParseRefuses: every kind of bad document is refused with an error that names the
// problem and where it is, and never holds the key.
func TestParseRefuses(t *testing.T) {
	const kid = "11111111-2222-3333-4444-555555555555"
	one := `<ContentKeyList>` + key(kid, "", key16) + `</ContentKeyList>`
	system := func(inner string) string {
		return one + `<DRMSystemList><DRMSystem kid="` + kid + `" systemId="edef8ba9-79d6-4ace-a3c8-27dcd51d21ed">` + inner + `</DRMSystem></DRMSystemList>`
	}
	for _, c := range []struct{ name, doc, want string }{
		{"not xml", "CPIX", "malformed XML"},
		{"truncated", doc(one)[:80], "malformed XML"},
		{"other root", `<MPD xmlns="urn:mpeg:dash:schema:mpd:2011"/>`, "not a CPIX document"},
		{"no namespace", `<CPIX><ContentKeyList/></CPIX>`, "not a CPIX document (want a CPIX element in namespace urn:dashif:org:cpix)"},
		{"no keys", doc(""), "no ContentKey"},
		{"bad base64", doc(`<ContentKeyList>` + key(kid, "", "!!!") + `</ContentKeyList>`), "kid " + kid + ": PlainValue: bad base64"},
		{"short key", doc(`<ContentKeyList>` + key(kid, "", base64.StdEncoding.EncodeToString(make([]byte, 15))) + `</ContentKeyList>`), "key is 15 bytes, want 16"},
		{"kid not uuid", doc(`<ContentKeyList>` + key("1234", "", key16) + `</ContentKeyList>`), `kid: "1234" is not a UUID`},
		{"kid twice", doc(`<ContentKeyList>` + key(kid, "", key16) + key(kid, "", key16) + `</ContentKeyList>`), "kid given twice"},
		{"unknown scheme", doc(`<ContentKeyList>` + key(kid, `commonEncryptionScheme="ctr9"`, key16) + `</ContentKeyList>`), `unknown commonEncryptionScheme "ctr9"`},
		{"cens", doc(`<ContentKeyList>` + key(kid, `commonEncryptionScheme="cens"`, key16) + `</ContentKeyList>`), `commonEncryptionScheme "cens" is not supported`},
		{"bad iv", doc(`<ContentKeyList>` + key(kid, `explicitIV="`+base64.StdEncoding.EncodeToString(make([]byte, 12))+`"`, key16) + `</ContentKeyList>`), "explicitIV is 12 bytes"},
		{"no value", doc(`<ContentKeyList><ContentKey kid="` + kid + `"/></ContentKeyList>`), "no Data/Secret"},
		{"encrypted key", doc(`<ContentKeyList><ContentKey kid="` + kid + `"><Data><pskc:Secret><pskc:EncryptedValue/></pskc:Secret></Data></ContentKey></ContentKeyList>`), "EncryptedValue, with DeliveryData) is not supported"},
		{"delivery data", doc(`<DeliveryDataList><DeliveryData/></DeliveryDataList>` + one), "DeliveryDataList: content keys encrypted for a recipient are not supported"},
		{"rule unknown kid", doc(one + `<ContentKeyUsageRuleList><ContentKeyUsageRule kid="99999999-2222-3333-4444-555555555555"/></ContentKeyUsageRuleList>`), "ContentKeyUsageRule 1: kid 99999999-2222-3333-4444-555555555555 is not a ContentKey"},
		{"rule unknown period", doc(one + `<ContentKeyUsageRuleList><ContentKeyUsageRule kid="` + kid + `"><KeyPeriodFilter periodId="p9"/></ContentKeyUsageRule></ContentKeyUsageRuleList>`), `names period "p9"`},
		{"label filter", doc(one + `<ContentKeyUsageRuleList><ContentKeyUsageRule kid="` + kid + `"><LabelFilter label="x"/></ContentKeyUsageRule></ContentKeyUsageRuleList>`), "LabelFilter is not supported"},
		{"bad pixels", doc(one + `<ContentKeyUsageRuleList><ContentKeyUsageRule kid="` + kid + `"><VideoFilter minPixels="-1"/></ContentKeyUsageRule></ContentKeyUsageRuleList>`), `minPixels "-1"`},
		{"system unknown kid", doc(one + `<DRMSystemList><DRMSystem kid="99999999-2222-3333-4444-555555555555" systemId="edef8ba9-79d6-4ace-a3c8-27dcd51d21ed"/></DRMSystemList>`), "is not a ContentKey of the document"},
		{"pssh base64", doc(system(`<PSSH>%%%</PSSH>`)), "PSSH: bad base64"},
		{"pssh not a box", doc(system(`<PSSH>` + b64s("hello world, not a box") + `</PSSH>`)), "PSSH: not a pssh box"},
		{"pssh other system", doc(system(`<PSSH>AAAAIHBzc2gAAAAAmgTweZhAQoarkuZb4IhflQAAAAA=</PSSH>`)), "PSSH: box of system 9a04f079"},
		{"cp data not xml", doc(system(`<ContentProtectionData>` + b64s("<pssh>abc") + `</ContentProtectionData>`)), "ContentProtectionData: not well-formed XML"},
		{"cp data prefix", doc(system(`<ContentProtectionData>` + b64s("<cenc:pssh>abc</cenc:pssh>") + `</ContentProtectionData>`)), `prefix "cenc" is not declared`},
		{"hls other tag", doc(system(`<HLSSignalingData playlist="media">` + b64s("#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"x\"\n#EXTINF:4,\nevil.ts") + `</HLSSignalingData>`)), `only #EXT-X-KEY lines`},
		{"hls session in media", doc(system(`<HLSSignalingData playlist="master">` + b64s("#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"x\"") + `</HLSSignalingData>`)), `only #EXT-X-SESSION-KEY lines`},
		{"hls playlist", doc(system(`<HLSSignalingData playlist="variant">` + b64s("#EXT-X-KEY:X") + `</HLSSignalingData>`)), `playlist "variant"`},
		{"uri quote", doc(system(`<URIExtXKey>` + b64s(`skd://a"b`) + `</URIExtXKey>`)), "URIExtXKey is empty or holds a double quote"},
		{"period both", doc(one + `<ContentKeyPeriodList><ContentKeyPeriod id="p" index="1" start="2025-01-01T00:00:00Z" end="2025-01-01T00:01:00Z"/></ContentKeyPeriodList>`), "index and start/end both given"},
		{"period bad time", doc(one + `<ContentKeyPeriodList><ContentKeyPeriod id="p" start="yesterday" end="2025-01-01T00:01:00Z"/></ContentKeyPeriodList>`), `start "yesterday"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(c.doc))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
			if strings.Contains(err.Error(), key16) || strings.Contains(err.Error(), "0123456789abcdef") {
				t.Errorf("error %q holds the key", err)
			}
		})
	}
}

// TestKeyFor: usage rules pick a key per track type, pixels and channels; a document without
// rules has one key for everything; ambiguous or missing rules are errors; several periods
// are refused for VOD and resolved per period for live.
func TestKeyFor(t *testing.T) {
	const sd, hd, au = "00000000-0000-0000-0000-000000000001", "00000000-0000-0000-0000-000000000002", "00000000-0000-0000-0000-000000000003"
	keys := `<ContentKeyList>` + key(sd, "", key16) + key(hd, "", key16) + key(au, "", key16) + `</ContentKeyList>`
	rules := func(r string) *Document {
		t.Helper()
		d, err := Parse(strings.NewReader(doc(keys + `<ContentKeyUsageRuleList>` + r + `</ContentKeyUsageRuleList>`)))
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	d := rules(`<ContentKeyUsageRule kid="` + sd + `" intendedTrackType="SD"><VideoFilter maxPixels="409920"/></ContentKeyUsageRule>` +
		`<ContentKeyUsageRule kid="` + hd + `" intendedTrackType="HD"><VideoFilter minPixels="409921"/></ContentKeyUsageRule>` +
		`<ContentKeyUsageRule kid="` + au + `" intendedTrackType="AUDIO"><AudioFilter maxChannels="2"/></ContentKeyUsageRule>`)
	for _, c := range []struct {
		tr   Track
		want string
	}{
		{Track{Type: manifest.Video, Pixels: 640 * 360}, sd},
		{Track{Type: manifest.Video, Pixels: 1280 * 720}, hd},
		{Track{Type: manifest.Audio, Channels: 2}, au},
	} {
		if k, err := d.KeyFor(c.tr); err != nil || k.KID.String() != c.want {
			t.Errorf("KeyFor(%+v) = %v, %v; want %s", c.tr, k, err, c.want)
		}
	}
	if _, err := d.KeyFor(Track{Type: manifest.Audio, Channels: 6}); err == nil || !strings.Contains(err.Error(), "no ContentKeyUsageRule gives a key for a audio track") {
		t.Errorf("6 channels: %v", err)
	}
	amb := rules(`<ContentKeyUsageRule kid="` + sd + `"/><ContentKeyUsageRule kid="` + hd + `"><VideoFilter/></ContentKeyUsageRule>`)
	if _, err := amb.Key(manifest.Video, ""); err == nil || !strings.Contains(err.Error(), "usage rules give two keys") {
		t.Errorf("ambiguous: %v", err)
	}
	if _, err := rules("").Key(manifest.Video, ""); err == nil || !strings.Contains(err.Error(), "3 content keys and no ContentKeyUsageRule") {
		t.Errorf("no rules: %v", err)
	}

	periods := `<ContentKeyPeriodList><ContentKeyPeriod id="k1" index="1"/><ContentKeyPeriod id="k2" index="2"/></ContentKeyPeriodList>`
	live, err := Parse(strings.NewReader(doc(keys + periods + `<ContentKeyUsageRuleList>` +
		`<ContentKeyUsageRule kid="` + sd + `"><KeyPeriodFilter periodId="k1"/></ContentKeyUsageRule>` +
		`<ContentKeyUsageRule kid="` + hd + `"><KeyPeriodFilter periodId="k2"/></ContentKeyUsageRule></ContentKeyUsageRuleList>`)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := live.VODPeriod(); err != ErrPeriods {
		t.Errorf("VODPeriod with two periods: %v", err)
	}
	for period, want := range map[string]string{"k1": sd, "k2": hd} {
		if k, err := live.Key(manifest.Audio, period); err != nil || k.KID.String() != want {
			t.Errorf("Key(audio, %s) = %v, %v", period, k, err)
		}
	}
	if *live.Periods[1].Index != 2 {
		t.Errorf("period index %d", *live.Periods[1].Index)
	}
}

// TestSchemeConflict: keys that ask for different schemes are an error.
func TestSchemeConflict(t *testing.T) {
	d, err := Parse(strings.NewReader(doc(`<ContentKeyList>` +
		key("00000000-0000-0000-0000-000000000001", `commonEncryptionScheme="cenc"`, key16) +
		key("00000000-0000-0000-0000-000000000002", `commonEncryptionScheme="cbcs"`, key16) + `</ContentKeyList>`)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Scheme(); err == nil || !strings.Contains(err.Error(), "different schemes (cenc and cbcs)") {
		t.Errorf("Scheme() error %v", err)
	}
}

// FuzzParse: no input makes Parse panic, and what it accepts holds its invariants: 16-byte
// keys, known schemes, rules and systems that name keys of the document.
func FuzzParse(f *testing.F) {
	f.Add(sample(f))
	f.Add([]byte(doc(`<ContentKeyList>` + key("11111111-2222-3333-4444-555555555555", `commonEncryptionScheme="cenc"`, key16) + `</ContentKeyList>`)))
	f.Add([]byte(doc(`<ContentKeyList>` + key("11111111-2222-3333-4444-555555555555", "", key16) + `</ContentKeyList><ContentKeyPeriodList><ContentKeyPeriod id="a" index="3"/></ContentKeyPeriodList>`)))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := Parse(bytes.NewReader(data))
		if err != nil {
			return
		}
		kids := map[KID]bool{}
		for _, k := range d.Keys {
			if len(k.Key) != 16 || (k.Scheme != "" && k.Scheme != "cenc" && k.Scheme != "cbcs") {
				t.Fatalf("accepted key %s: %d bytes, scheme %q", k.KID, len(k.Key), k.Scheme)
			}
			kids[k.KID] = true
		}
		for _, r := range d.Rules {
			if !kids[r.KID] {
				t.Fatalf("rule names unknown kid %s", r.KID)
			}
		}
		for _, s := range d.Systems {
			if !kids[s.KID] {
				t.Fatalf("system names unknown kid %s", s.KID)
			}
			if strings.ContainsAny(s.URIExtXKey, "\"\n\r") {
				t.Fatalf("URIExtXKey %q", s.URIExtXKey)
			}
		}
		_, _ = d.Key(manifest.Video, "")
	})
}
