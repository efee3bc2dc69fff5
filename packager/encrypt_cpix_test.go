package packager

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/Eyevinn/dash-mpd/mpd"
	"github.com/Eyevinn/hls-m3u8/m3u8"
	"github.com/Eyevinn/mp4ff/mp4"
	"github.com/reelvideo/reel/internal/testkit"
	"github.com/reelvideo/reel/manifest"
	"github.com/reelvideo/reel/packager/cpix"
)

func sampleCPIX(t *testing.T) *cpix.Document {
	t.Helper()
	d, err := cpix.Load(context.Background(), filepath.Join("cpix", "testdata", "ladder.cpix.xml"), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestEncryptCPIX packages the ladder with the sample CPIX document (cbcs from its keys, video
// and audio under their own keys): every track's tenc carries its type's KID and its init
// segment the document's pssh boxes byte for byte, in order; decrypting every segment with
// that key gives back the clear samples; the MPD and playlists signal each track's key and
// DRM systems and parse back; no output byte holds a key, raw, in hex or in base64.
func TestEncryptCPIX(t *testing.T) {
	doc := sampleCPIX(t)
	clearDir, clearP, encDir, encP := packagedTwiceWith(t, ladder, &Encryption{CPIX: doc})
	if encP.Protection == nil || encP.Protection.Scheme != "cbcs" {
		t.Fatalf("Protection %+v", encP.Protection)
	}
	keyOf := map[manifest.Kind]*cpix.ContentKey{}
	keyOf[manifest.Video], _ = doc.Key(cpix.Video, "")
	keyOf[manifest.Audio], _ = doc.Key(cpix.Audio, "")
	if keyOf[manifest.Video].KID == keyOf[manifest.Audio].KID {
		t.Fatal("the sample gives video and audio one key")
	}
	for i, et := range encP.Tracks() {
		ct := clearP.Tracks()[i]
		k := keyOf[et.Kind]
		if et.Protection == nil || et.Protection.KID != k.KID {
			t.Fatalf("%s: Protection %+v, want KID %s", et.ID, et.Protection, k.KID)
		}
		initPath := filepath.Join(encDir, et.ID, manifest.InitSegmentName)
		tenc := checkProtectedInitKID(t, initPath, et.Kind, "cbcs", 0, k.KID[:])
		// The explicitIV, offset in its first half by the track's index (see newTrackEncryptor).
		if !bytes.Equal(tenc.DefaultKID, k.KID[:]) || !bytes.Equal(tenc.DefaultConstantIV[8:], k.ExplicitIV[8:]) {
			t.Errorf("%s: tenc KID %x IV %x, want %s and the explicitIV %x", et.ID, tenc.DefaultKID, tenc.DefaultConstantIV, k.KID, k.ExplicitIV)
		}
		init := decodeMP4(t, initPath).Init
		var wantPSSH [][]byte
		for _, s := range doc.SystemsFor(k.KID) {
			if len(s.PSSH) > 0 {
				wantPSSH = append(wantPSSH, s.PSSH)
			}
		}
		if len(init.Moov.Psshs) != len(wantPSSH) || len(wantPSSH) != 3 {
			t.Fatalf("%s: %d pssh boxes in moov, want %d (3)", et.ID, len(init.Moov.Psshs), len(wantPSSH))
		}
		for j, p := range init.Moov.Psshs {
			var buf bytes.Buffer
			if err := p.Encode(&buf); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf.Bytes(), wantPSSH[j]) {
				t.Errorf("%s: pssh %d is not the CPIX's", et.ID, j)
			}
		}
		di, err := mp4.DecryptInit(init)
		if err != nil {
			t.Fatalf("%s: DecryptInit: %v", et.ID, err)
		}
		trex := decodeMP4(t, filepath.Join(clearDir, ct.ID, manifest.InitSegmentName)).Init.Moov.Mvex.Trex
		samples := 0
		for _, s := range ct.Segments {
			want := fullSamples(t, decodeMP4(t, filepath.Join(clearDir, ct.ID, s.URI)).Segments[0], trex)
			seg := decodeMP4(t, filepath.Join(encDir, et.ID, s.URI)).Segments[0]
			if err := mp4.DecryptSegment(seg, di, k.Key); err != nil {
				t.Fatalf("%s/%s: DecryptSegment: %v", et.ID, s.URI, err)
			}
			got := fullSamples(t, seg, trex)
			if len(got) != len(want) {
				t.Fatalf("%s/%s: %d samples, clear %d", et.ID, s.URI, len(got), len(want))
			}
			for n := range want {
				if !bytes.Equal(got[n].Data, want[n].Data) {
					t.Fatalf("%s/%s sample %d: decrypted bytes differ from the clear sample", et.ID, s.URI, n)
				}
			}
			samples += len(want)
		}
		if samples == 0 {
			t.Fatalf("%s: no samples", et.ID)
		}
	}

	// DASH: each set under its key, with the PlayReady ContentProtectionData as given.
	m, err := mpd.ReadFromFile(filepath.Join(encDir, manifest.DASHManifest))
	if err != nil {
		t.Fatalf("reading the MPD back: %v", err)
	}
	for _, as := range m.Periods[0].AdaptationSets {
		kind := manifest.Video
		if as.ContentType == "audio" {
			kind = manifest.Audio
		}
		var schemes []string
		for _, cp := range as.ContentProtections {
			schemes = append(schemes, string(cp.SchemeIdUri))
		}
		want := "urn:mpeg:dash:mp4protection:2011 urn:uuid:edef8ba9-79d6-4ace-a3c8-27dcd51d21ed urn:uuid:9a04f079-9840-4286-ab92-e65be0885f95 " +
			"urn:uuid:94ce86fb-07ff-4f43-adb8-93d2fa968ca2 urn:uuid:1077efec-c0b2-4d02-ace3-3c1e52e2fb4b urn:uuid:e2719d58-a985-b3c9-781a-b030af78d30e"
		if got := strings.Join(schemes, " "); got != want || as.ContentProtections[0].DefaultKID != keyOf[kind].KID.String() {
			t.Errorf("%s set: ContentProtection %s (KID %s), want %s (KID %s)", as.ContentType, got, as.ContentProtections[0].DefaultKID, want, keyOf[kind].KID)
		}
		if ck := as.ContentProtections[5]; ck.LaURL == nil || ck.LaURL.Value != "https://clearkey.example/license" {
			t.Errorf("%s set: ClearKey without the CPIX's Laurl", as.ContentType)
		}
	}
	raw, err := os.ReadFile(filepath.Join(encDir, manifest.DASHManifest))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range doc.Systems {
		if s.ContentProtectionData != "" && !bytes.Contains(raw, []byte(s.ContentProtectionData)) {
			t.Errorf("MPD lacks the ContentProtectionData of %s for %s", s.SystemID, s.KID)
		}
	}

	// HLS: each media playlist carries its key's FairPlay URI and ClearKey KID; the master both.
	master, err := os.ReadFile(filepath.Join(encDir, manifest.MasterPlaylist))
	if err != nil {
		t.Fatal(err)
	}
	pl, _, err := m3u8.DecodeFrom(bytes.NewReader(master), true)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(pl.(*m3u8.MasterPlaylist).SessionKeys); n != 8 {
		t.Errorf("master: %d session keys, want 8 (Widevine, PlayReady, FairPlay, ClearKey for each key)", n)
	}
	for _, et := range encP.Tracks() {
		k := keyOf[et.Kind]
		raw, err := os.ReadFile(filepath.Join(encDir, et.ID, manifest.MediaPlaylist))
		if err != nil {
			t.Fatal(err)
		}
		pl, _, err := m3u8.DecodeFrom(bytes.NewReader(raw), true)
		if err != nil {
			t.Fatalf("%s: %v", et.ID, err)
		}
		keys := pl.(*m3u8.MediaPlaylist).Keys
		formats := []string{}
		for _, key := range keys {
			formats = append(formats, key.Keyformat)
		}
		if strings.Join(formats, " ") != "urn:uuid:edef8ba9-79d6-4ace-a3c8-27dcd51d21ed com.microsoft.playready com.apple.streamingkeydelivery org.w3.clearkey" {
			t.Errorf("%s: key formats %v", et.ID, formats)
		}
		fp := "skd://fairplay.example/" + hex.EncodeToString(k.KID[:])
		ck := "data:text/plain;base64," + base64.StdEncoding.EncodeToString(k.KID[:])
		if len(keys) == 4 && (keys[2].URI != fp || keys[3].URI != ck || keys[0].Method != "SAMPLE-AES") {
			t.Errorf("%s: keys %+v, want FairPlay %s and ClearKey %s", et.ID, keys, fp, ck)
		}
	}
	assertNoKeys(t, encDir, doc)
}

// assertNoKeys fails if any file under dir holds one of doc's keys.
func assertNoKeys(t *testing.T, dir string, doc *cpix.Document) {
	t.Helper()
	var keys [][]byte
	for _, k := range doc.Keys {
		keys = append(keys, k.Key)
	}
	testkit.CheckNoSecretInDir(t, dir, 10, keys...)
}

// TestEncryptCPIXRefused: a scheme that contradicts the document's, a document with several
// key periods, or key flags beside it are refused before anything is written, and an existing
// presentation stays as it was.
func TestEncryptCPIXRefused(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	if _, err := Package(context.Background(), Options{Inputs: ladder[:1], Output: out}); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(filepath.Join(out, manifest.DASHManifest))
	if err != nil {
		t.Fatal(err)
	}
	periods, err := cpix.Parse(strings.NewReader(`<CPIX xmlns="urn:dashif:org:cpix" xmlns:pskc="urn:ietf:params:xml:ns:keyprov:pskc"><ContentKeyList>` +
		`<ContentKey kid="00000000-0000-0000-0000-000000000001" commonEncryptionScheme="cenc"><Data><pskc:Secret><pskc:PlainValue>MDEyMzQ1Njc4OWFiY2RlZg==</pskc:PlainValue></pskc:Secret></Data></ContentKey>` +
		`</ContentKeyList><ContentKeyPeriodList><ContentKeyPeriod id="a" index="1"/><ContentKeyPeriod id="b" index="2"/></ContentKeyPeriodList></CPIX>`))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		e    *Encryption
		want string
	}{
		{"scheme conflict", &Encryption{Scheme: "cenc", CPIX: sampleCPIX(t)}, "encryption scheme cenc, but the CPIX document's keys ask for cbcs"},
		{"periods", &Encryption{CPIX: periods}, "several ContentKeyPeriods: key periods (rotation) are for live"},
		{"key flags", &Encryption{CPIX: sampleCPIX(t), KeyID: testKID, Key: testKey}, "come from the CPIX document"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Package(context.Background(), Options{Inputs: ladder, Output: out, Encryption: c.e})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want %q", err, c.want)
			}
			var in *InputError
			if errors.As(err, &in) {
				t.Errorf("a key problem reported as an input error: %v", err)
			}
			after, err := os.ReadFile(filepath.Join(out, manifest.DASHManifest))
			if err != nil || !bytes.Equal(after, before) {
				t.Errorf("the existing presentation changed (%v)", err)
			}
		})
	}
}

// TestEncryptCPIXSingleFile: with --single-file too, each track's media.mp4 starts with an init
// segment under its own key that carries the document's pssh boxes, and the MPD signals each
// set's key.
func TestEncryptCPIXSingleFile(t *testing.T) {
	doc := sampleCPIX(t)
	out := filepath.Join(t.TempDir(), "sf")
	p, err := Package(context.Background(), Options{Inputs: ladder, Output: out, SingleFile: true, Encryption: &Encryption{CPIX: doc}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range p.Tracks() {
		typ := cpix.Video
		if tr.Kind == manifest.Audio {
			typ = cpix.Audio
		}
		k, _ := doc.Key(typ, "")
		f := decodeMP4(t, filepath.Join(out, tr.ID, tr.InitURI))
		if f.Init == nil || len(f.Init.Moov.Psshs) != 3 {
			t.Fatalf("%s: no init or not 3 pssh boxes", tr.ID)
		}
		checkProtectedInitKID(t, filepath.Join(out, tr.ID, tr.InitURI), tr.Kind, "cbcs", 0, k.KID[:])
	}
	m, err := mpd.ReadFromFile(filepath.Join(out, manifest.DASHManifest))
	if err != nil {
		t.Fatal(err)
	}
	for _, as := range m.Periods[0].AdaptationSets {
		typ := cpix.Video
		if as.ContentType == "audio" {
			typ = cpix.Audio
		}
		k, _ := doc.Key(typ, "")
		if len(as.ContentProtections) == 0 || as.ContentProtections[0].DefaultKID != k.KID.String() {
			t.Errorf("%s set: ContentProtection %+v, want default_KID %s", as.ContentType, as.ContentProtections, k.KID)
		}
	}
	assertNoKeys(t, out, doc)
}

// TestEncryptCPIXVerbatim: a DRM system's HLSSignalingData (master and media) and
// ContentProtectionData reach the playlists and the MPD exactly as the document gives them,
// each where it belongs.
func TestEncryptCPIXVerbatim(t *testing.T) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	const (
		media  = `#EXT-X-KEY:METHOD=SAMPLE-AES,URI="vendor://media/k1",KEYFORMAT="com.vendor.drm",KEYFORMATVERSIONS="1"`
		master = `#EXT-X-SESSION-KEY:METHOD=SAMPLE-AES,URI="vendor://master/k1",KEYFORMAT="com.vendor.drm",KEYFORMATVERSIONS="1"`
		cpData = `<vendor:Header xmlns:vendor="urn:vendor:drm" version="2">k1-header</vendor:Header>`
	)
	doc, err := cpix.Parse(strings.NewReader(`<CPIX xmlns="urn:dashif:org:cpix" xmlns:pskc="urn:ietf:params:xml:ns:keyprov:pskc"><ContentKeyList>` +
		`<ContentKey kid="0a0b0c0d-0000-4000-8000-000000000001" commonEncryptionScheme="cbcs"><Data><pskc:Secret><pskc:PlainValue>` + b64("0123456789abcdef") +
		`</pskc:PlainValue></pskc:Secret></Data></ContentKey></ContentKeyList><DRMSystemList>` +
		`<DRMSystem kid="0a0b0c0d-0000-4000-8000-000000000001" systemId="12345678-1234-4234-8234-123456789abc">` +
		`<ContentProtectionData>` + b64(cpData) + `</ContentProtectionData>` +
		`<HLSSignalingData playlist="media">` + b64(media+"\n") + `</HLSSignalingData>` +
		`<HLSSignalingData playlist="master">` + b64(master) + `</HLSSignalingData>` +
		`</DRMSystem></DRMSystemList></CPIX>`))
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	p, err := Package(context.Background(), Options{Inputs: ladder[:1], Output: out, Encryption: &Encryption{CPIX: doc}})
	if err != nil {
		t.Fatal(err)
	}
	read := func(name string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if m := read(manifest.MasterPlaylist); !strings.Contains(m, "\n"+master+"\n") || strings.Contains(m, "vendor://media") {
		t.Errorf("master:\n%s", m)
	}
	for _, tr := range p.Tracks() {
		if pl := read(filepath.Join(tr.ID, manifest.MediaPlaylist)); !strings.Contains(pl, "\n"+media+"\n") || strings.Contains(pl, "vendor://master") {
			t.Errorf("%s:\n%s", tr.ID, pl)
		}
	}
	mpdText := read(manifest.DASHManifest)
	if strings.Count(mpdText, cpData) != 2 || !strings.Contains(mpdText, `schemeIdUri="urn:uuid:12345678-1234-4234-8234-123456789abc"`) {
		t.Errorf("MPD lacks the ContentProtectionData in both sets:\n%s", mpdText)
	}
	if _, err := mpd.ReadFromFile(filepath.Join(out, manifest.DASHManifest)); err != nil {
		t.Errorf("the MPD does not parse back: %v", err)
	}
}
