package manifest

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"slices"
	"strings"
	"testing"

	"github.com/Eyevinn/dash-mpd/mpd"
)

// testPSSH makes a version 0 pssh box of system with data.
func testPSSH(system [16]byte, data []byte) []byte {
	b := make([]byte, 32, 32+len(data))
	binary.BigEndian.PutUint32(b, uint32(32+len(data)))
	copy(b[4:], "pssh")
	copy(b[12:], system[:])
	binary.BigEndian.PutUint32(b[28:], uint32(len(data)))
	return append(b, data...)
}

// drmFixture: video under one key with every kind of DRM system signalling, audio under
// another with Widevine only.
func drmFixture() (p *Presentation, video, audio *Protection) {
	p = fixture(false)
	custom := [16]byte{0x11, 0x11}
	video = &Protection{Scheme: "cbcs", KID: [16]byte{0xaa, 1}, ClearKeyLicense: "https://ck.example/license?a=1&b=2",
		Systems: []DRMSystem{
			{ID: SystemWidevine, PSSH: testPSSH(SystemWidevine, []byte("wv-video"))},
			{ID: SystemPlayReady, PSSH: testPSSH(SystemPlayReady, []byte("pro-video")),
				ContentProtectionData: `<pssh xmlns="urn:mpeg:cenc:2013">UFJPLXZpZGVv</pssh><pro xmlns="urn:microsoft:playready">cHJv</pro>`},
			{ID: SystemFairPlay, KeyURI: "skd://fairplay.example/aa01"},
			{ID: SystemClearKey},
			{ID: SystemW3CCommon, PSSH: testPSSH(SystemW3CCommon, nil)},
			{ID: custom, HLSMedia: `#EXT-X-KEY:METHOD=SAMPLE-AES,URI="custom://k",KEYFORMAT="com.example"`,
				HLSMaster: `#EXT-X-SESSION-KEY:METHOD=SAMPLE-AES,URI="custom://k",KEYFORMAT="com.example"`},
		}}
	audio = &Protection{Scheme: "cbcs", KID: [16]byte{0xbb, 2},
		Systems: []DRMSystem{{ID: SystemWidevine, PSSH: testPSSH(SystemWidevine, []byte("wv-audio"))}}}
	p.Protection = video
	for _, t := range p.Video {
		t.Protection = video
	}
	for _, t := range p.Audio {
		t.Protection = audio
	}
	return p, video, audio
}

func keyLines(b []byte, tag string) []string {
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, tag) {
			out = append(out, l)
		}
	}
	return out
}

// TestHLSDRMSystems: each track's playlists carry its own key's tags, one per DRM system in
// the system's form (Widevine's pssh and KEYID, PlayReady's PlayReady Object, FairPlay's skd
// URI, the CPIX's own lines verbatim) and ClearKey last; the master has every distinct one as
// EXT-X-SESSION-KEY. hls-m3u8 reads them all.
func TestHLSDRMSystems(t *testing.T) {
	p, video, audio := drmFixture()
	b64 := base64.StdEncoding.EncodeToString
	wv := func(pr *Protection, data string) string {
		return `METHOD=SAMPLE-AES,URI="data:text/plain;base64,` + b64(testPSSH(SystemWidevine, []byte(data))) + `",KEYID=0x` +
			strings.ToUpper(strings.ReplaceAll(pr.KIDUUID(), "-", "")) + `,KEYFORMAT="urn:uuid:edef8ba9-79d6-4ace-a3c8-27dcd51d21ed",KEYFORMATVERSIONS="1"`
	}
	ck := func(pr *Protection) string {
		return `METHOD=SAMPLE-AES,URI="data:text/plain;base64,` + b64(pr.KID[:]) + `",KEYFORMAT="org.w3.clearkey",KEYFORMATVERSIONS="1"`
	}
	videoLines := []string{
		"#EXT-X-KEY:" + wv(video, "wv-video"),
		`#EXT-X-KEY:METHOD=SAMPLE-AES,URI="data:text/plain;charset=UTF-16;base64,` + b64([]byte("pro-video")) + `",KEYFORMAT="com.microsoft.playready",KEYFORMATVERSIONS="1"`,
		`#EXT-X-KEY:METHOD=SAMPLE-AES,URI="skd://fairplay.example/aa01",KEYFORMAT="com.apple.streamingkeydelivery",KEYFORMATVERSIONS="1"`,
		`#EXT-X-KEY:METHOD=SAMPLE-AES,URI="custom://k",KEYFORMAT="com.example"`,
		"#EXT-X-KEY:" + ck(video),
	}
	audioLines := []string{"#EXT-X-KEY:" + wv(audio, "wv-audio"), "#EXT-X-KEY:" + ck(audio)}
	for _, tr := range p.Tracks() {
		want := videoLines
		if tr.Kind == Audio {
			want = audioLines
		}
		raw := p.HLSMedia(tr)
		if got := keyLines(raw, "#EXT-X-KEY:"); !slices.Equal(got, want) {
			t.Errorf("%s: key lines\n%s\nwant\n%s", tr.ID, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		if pl, _ := parseMedia(t, raw); len(pl.Keys) != len(want) {
			t.Errorf("%s: hls-m3u8 reads %d keys, want %d", tr.ID, len(pl.Keys), len(want))
		}
	}
	raw := p.HLSMaster()
	var wantMaster []string
	for _, l := range append(slices.Clone(videoLines), audioLines...) {
		wantMaster = append(wantMaster, strings.Replace(l, "#EXT-X-KEY:", "#EXT-X-SESSION-KEY:", 1))
	}
	if got := keyLines(raw, "#EXT-X-SESSION-KEY:"); !slices.Equal(got, wantMaster) {
		t.Errorf("master: session keys\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(wantMaster, "\n"))
	}
	if m := parseMaster(t, raw); len(m.SessionKeys) != len(wantMaster) || m.Version() != 5 {
		t.Errorf("master: hls-m3u8 reads %d session keys, version %d", len(m.SessionKeys), m.Version())
	}

	// FairPlay decrypts cbcs only: under cenc its tag is left out, the others stay.
	video.Scheme, audio.Scheme = "cenc", "cenc"
	got := keyLines(p.HLSMedia(p.Video[0]), "#EXT-X-KEY:")
	if len(got) != 4 || strings.Contains(strings.Join(got, "\n"), "streamingkeydelivery") || !strings.HasPrefix(got[0], "#EXT-X-KEY:METHOD=SAMPLE-AES-CTR,") {
		t.Errorf("cenc: key lines\n%s", strings.Join(got, "\n"))
	}
}

// TestDASHDRMSystems: each AdaptationSet signals its own key: mp4protection with its
// default_KID, one ContentProtection per DRM system (cenc:pssh, or the CPIX's
// ContentProtectionData exactly as given), and ClearKey last with the license URL; dash-mpd
// reads it all back. Tracks of one set under different keys are signalled per Representation.
func TestDASHDRMSystems(t *testing.T) {
	p, video, audio := drmFixture()
	raw, err := p.DASH()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(raw, []byte(video.Systems[1].ContentProtectionData)) {
		t.Errorf("MPD lacks the PlayReady ContentProtectionData as given:\n%s", raw)
	}
	if bytes.Contains(raw, []byte(cpDataMarker)) {
		t.Error("a ContentProtectionData marker is left in the MPD")
	}
	m := parseMPD(t, p)
	type cp struct{ scheme, value, kid, pssh, laurl string }
	read := func(list []*mpd.ContentProtectionType) []cp {
		var out []cp
		for _, c := range list {
			x := cp{scheme: string(c.SchemeIdUri), value: c.Value, kid: c.DefaultKID}
			if c.Pssh != nil {
				x.pssh = c.Pssh.Value
			}
			if c.LaURL != nil {
				x.laurl = string(c.LaURL.Value) + " " + c.LaURL.LicenseType
			}
			out = append(out, x)
		}
		return out
	}
	b64 := base64.StdEncoding.EncodeToString
	wantVideo := []cp{
		{scheme: mp4ProtectionScheme, value: "cbcs", kid: video.KIDUUID()},
		{scheme: "urn:uuid:edef8ba9-79d6-4ace-a3c8-27dcd51d21ed", pssh: b64(video.Systems[0].PSSH)},
		{scheme: "urn:uuid:9a04f079-9840-4286-ab92-e65be0885f95", value: "MSPR 2.0", pssh: "UFJPLXZpZGVv"},
		{scheme: "urn:uuid:94ce86fb-07ff-4f43-adb8-93d2fa968ca2"},
		{scheme: "urn:uuid:1077efec-c0b2-4d02-ace3-3c1e52e2fb4b", pssh: b64(video.Systems[4].PSSH)},
		{scheme: "urn:uuid:11110000-0000-0000-0000-000000000000"},
		{scheme: clearKeyScheme, value: "ClearKey1.0", laurl: "https://ck.example/license?a=1&b=2 EME-1.0"},
	}
	wantAudio := []cp{
		{scheme: mp4ProtectionScheme, value: "cbcs", kid: audio.KIDUUID()},
		{scheme: "urn:uuid:edef8ba9-79d6-4ace-a3c8-27dcd51d21ed", pssh: b64(audio.Systems[0].PSSH)},
		{scheme: clearKeyScheme, value: "ClearKey1.0"},
	}
	for _, as := range m.Periods[0].AdaptationSets {
		want := wantVideo
		if as.ContentType == "audio" {
			want = wantAudio
		}
		if got := read(as.ContentProtections); !slices.Equal(got, want) {
			t.Errorf("%s set: ContentProtection\n%+v\nwant\n%+v", as.ContentType, got, want)
		}
	}

	// One rung under its own key: the video set's signalling moves to its Representations.
	p.Video[2].Protection = audio
	m = parseMPD(t, p)
	vs := m.Periods[0].AdaptationSets[0]
	if len(vs.ContentProtections) != 0 {
		t.Errorf("video set keeps %d ContentProtections", len(vs.ContentProtections))
	}
	for i, r := range vs.Representations {
		want := wantVideo
		if i == 2 {
			want = wantAudio
		}
		if got := read(r.ContentProtections); !slices.Equal(got, want) {
			t.Errorf("%s: ContentProtection %+v, want %+v", r.Id, got, want)
		}
	}
}
