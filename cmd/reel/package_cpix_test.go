package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reelvideo/reel/internal/testkit"
	"github.com/reelvideo/reel/packager/cpix"
)

const sampleCPIX = "../../packager/cpix/testdata/ladder.cpix.xml"

// reelRun runs the built binary bin with env added to the environment and returns its exit
// code, stdout and stderr.
func reelRun(t *testing.T, bin string, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatal(err)
		}
		code = ee.ExitCode()
	}
	return code, stdout.String(), stderr.String()
}

// assertNoKeysIn fails if any file under dir holds one of the keys of the CPIX document at docPath.
func assertNoKeysIn(t *testing.T, dir string, docPath string) {
	t.Helper()
	d, err := cpix.Load(context.Background(), docPath, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var keys [][]byte
	for _, k := range d.Keys {
		keys = append(keys, k.Key)
	}
	testkit.CheckNoSecretInDir(t, dir, 10, keys...)
}

// TestPackageCPIX: reel package --cpix FILE (the built binary) encrypts with the document's
// keys: cbcs from the document, video and audio under their own KIDs in the MPD and the
// playlists, with Widevine, PlayReady, FairPlay and ClearKey signalled; nothing on stderr; no
// output byte holds a key.
func TestPackageCPIX(t *testing.T) {
	bin := buildReel(t)
	out := filepath.Join(t.TempDir(), "out")
	code, _, stderr := reelRun(t, bin, nil, "package", "--quiet", "--cpix", sampleCPIX,
		sample("ladder_360p.mp4"), sample("ladder_480p.mp4"), "-o", out)
	if code != exitOK || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	for _, c := range [][2]string{
		{"manifest.mpd", `cenc:default_KID="a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d" schemeIdUri="urn:mpeg:dash:mp4protection:2011" value="cbcs"`},
		{"manifest.mpd", `cenc:default_KID="f0e1d2c3-b4a5-4968-8776-655443322110" schemeIdUri="urn:mpeg:dash:mp4protection:2011" value="cbcs"`},
		{"manifest.mpd", `<ContentProtection schemeIdUri="urn:uuid:edef8ba9-79d6-4ace-a3c8-27dcd51d21ed">`},
		{"manifest.mpd", `<Laurl xmlns="https://dashif.org/CPS" licenseType="EME-1.0">https://clearkey.example/license</Laurl>`},
		{"video_360p/index.m3u8", `#EXT-X-KEY:METHOD=SAMPLE-AES,URI="skd://fairplay.example/a1b2c3d4e5f64a7b8c9d0e1f2a3b4c5d",KEYFORMAT="com.apple.streamingkeydelivery",KEYFORMATVERSIONS="1"`},
		{"video_360p/index.m3u8", `#EXT-X-KEY:METHOD=SAMPLE-AES,URI="data:text/plain;base64,obLD1OX2SnuMnQ4fKjtMXQ==",KEYFORMAT="org.w3.clearkey",KEYFORMATVERSIONS="1"`},
		{"audio/index.m3u8", `KEYFORMAT="com.microsoft.playready",KEYFORMATVERSIONS="1"`},
		{"audio/index.m3u8", `#EXT-X-KEY:METHOD=SAMPLE-AES,URI="data:text/plain;base64,8OHSw7SlSWiHdmVUQzIhEA==",KEYFORMAT="org.w3.clearkey",KEYFORMATVERSIONS="1"`},
		{"master.m3u8", `#EXT-X-SESSION-KEY:METHOD=SAMPLE-AES,URI="skd://fairplay.example/f0e1d2c3b4a549688776655443322110",KEYFORMAT="com.apple.streamingkeydelivery",KEYFORMATVERSIONS="1"`},
	} {
		data, err := os.ReadFile(filepath.Join(out, c[0]))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(data, []byte(c[1])) {
			t.Errorf("%s lacks %s", c[0], c[1])
		}
	}
	if data, _ := os.ReadFile(filepath.Join(out, "audio", "index.m3u8")); bytes.Contains(data, []byte("a1b2c3d4e5f6")) {
		t.Error("the audio playlist signals the video key")
	}
	assertNoKeysIn(t, out, sampleCPIX)
}

// TestPackageCPIXBadInput: a malformed document, a key of the wrong length, an unknown
// scheme, a scheme contradicting --encrypt, no key for the audio track: exactly one line on
// stderr naming the file and the problem, exit 1, and the presentation already at -o intact.
func TestPackageCPIXBadInput(t *testing.T) {
	bin := buildReel(t)
	good, err := os.ReadFile(sampleCPIX)
	if err != nil {
		t.Fatal(err)
	}
	parent := t.TempDir()
	out := filepath.Join(parent, "out")
	if code, _, stderr := reelRun(t, bin, nil, "package", "--quiet", sample("ladder_360p.mp4"), "-o", out); code != exitOK {
		t.Fatalf("clear packaging: exit %d: %s", code, stderr)
	}
	before := snapshot(t, out)
	const videoKey = "XS58Gp87To1qDCsffp06XA==" // the sample's video key in base64
	for _, c := range []struct {
		name, doc string
		args      []string
		want      string
	}{
		{"malformed", string(good[:len(good)/2]), nil, "malformed XML"},
		{"short key", strings.Replace(string(good), videoKey, base64.StdEncoding.EncodeToString(make([]byte, 15)), 1), nil,
			"ContentKey 1: kid a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d: key is 15 bytes, want 16"},
		{"unknown scheme", strings.Replace(string(good), `commonEncryptionScheme="cbcs"`, `commonEncryptionScheme="aes9"`, 1), nil,
			`unknown commonEncryptionScheme "aes9"`},
		{"scheme conflict", string(good), []string{"--encrypt", "cenc"}, "encryption scheme cenc, but the CPIX document's keys ask for cbcs"},
		{"no audio key", strings.Replace(string(good), `intendedTrackType="AUDIO">
      <cpix:AudioFilter/>`, `intendedTrackType="AUDIO">
      <cpix:AudioFilter minChannels="6"/>`, 1), nil, "no ContentKeyUsageRule gives a key for a audio track"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.args == nil && c.doc == string(good) {
				t.Fatal("the test case does not change the document")
			}
			docPath := filepath.Join(t.TempDir(), "keys.cpix.xml")
			if err := os.WriteFile(docPath, []byte(c.doc), 0o600); err != nil {
				t.Fatal(err)
			}
			args := append([]string{"package", "--quiet", "--cpix", docPath, sample("ladder_360p.mp4"), "-o", out}, c.args...)
			code, stdout, stderr := reelRun(t, bin, nil, args...)
			if code != exitFailure {
				t.Errorf("exit %d, want %d", code, exitFailure)
			}
			assertOneLine(t, "stderr", stderr)
			if !strings.Contains(stderr, docPath+": ") || !strings.Contains(stderr, c.want) {
				t.Errorf("stderr %q: want the file %s and %q", stderr, docPath, c.want)
			}
			if strings.Contains(stderr, videoKey) || stdout != "" {
				t.Errorf("stdout %q, stderr %q", stdout, stderr)
			}
			if after := snapshot(t, out); after != before {
				t.Error("the presentation at -o changed")
			}
			if left := dirEntries(t, parent); len(left) != 1 {
				t.Errorf("beside -o: %v", left)
			}
		})
	}
}

// snapshot is every file under dir with its bytes, as one comparable string.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.Walk(dir, func(path string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		b.WriteString(path + "\x00" + string(data) + "\x00")
		return err
	})
	if err != nil || b.Len() == 0 {
		t.Fatalf("snapshot of %s: %v", dir, err)
	}
	return b.String()
}

// TestPackageCPIXKeyServer: --cpix URL fetches the document from a key server on loopback
// with the bearer token from $REEL_CPIX_TOKEN or --cpix-token-file; without it the server's
// 401 is the one line of the error, naming the URL.
func TestPackageCPIXKeyServer(t *testing.T) {
	bin := buildReel(t)
	doc, err := os.ReadFile(sampleCPIX)
	if err != nil {
		t.Fatal(err)
	}
	const token = "tok-3f9a1c"
	requests := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests++
		if r.Header.Get("Authorization") != "Bearer "+token {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/xml")
		w.Write(doc)
	}))
	defer srv.Close()
	url := srv.URL + "/cpix/title-42"
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		env  []string
		args []string
	}{
		{"env", []string{"REEL_CPIX_TOKEN=" + token}, nil},
		{"token file", []string{"REEL_CPIX_TOKEN="}, []string{"--cpix-token-file", tokenFile}},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			args := append([]string{"package", "--quiet", "--cpix", url, sample("ladder_360p.mp4"), "-o", out}, c.args...)
			if code, _, stderr := reelRun(t, bin, c.env, args...); code != exitOK || stderr != "" {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
			if data, err := os.ReadFile(filepath.Join(out, "manifest.mpd")); err != nil || !bytes.Contains(data, []byte("a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d")) {
				t.Errorf("MPD without the CPIX's video KID (%v)", err)
			}
		})
	}
	parent := t.TempDir()
	code, _, stderr := reelRun(t, bin, []string{"REEL_CPIX_TOKEN=wrong"}, "package", "--quiet", "--cpix", url, sample("ladder_360p.mp4"), "-o", filepath.Join(parent, "out"))
	if code != exitFailure || stderr != "reel package: "+url+": key server answered 401 Unauthorized\n" {
		t.Errorf("wrong token: exit %d, stderr %q", code, stderr)
	}
	if left := dirEntries(t, parent); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
	if requests != 3 {
		t.Errorf("the key server saw %d requests, want 3", requests)
	}
}

// TestPackageClearKeyLicense: --clearkey-license puts the license URL in the MPD's ClearKey
// ContentProtection (dashif:Laurl); flags that do not fit together are usage errors.
func TestPackageClearKeyLicense(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	code, _, stderr := runReel(t, "package", "--quiet", "--encrypt", "cenc", "--key-id", testKeyID, "--key", testKey,
		"--clearkey-license", "https://keys.example/clearkey?title=42", sample("ladder_360p.mp4"), "-o", out)
	if code != exitOK || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	data, err := os.ReadFile(filepath.Join(out, "manifest.mpd"))
	if err != nil {
		t.Fatal(err)
	}
	want := `<dashif:Laurl xmlns:dashif="https://dashif.org/CPS" licenseType="EME-1.0">https://keys.example/clearkey?title=42</dashif:Laurl>`
	if n := bytes.Count(data, []byte(want)); n != 2 {
		t.Errorf("MPD holds %d of %s, want 2 (video and audio)", n, want)
	}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--clearkey-license", "https://k.example/"}, exitUsage, "--clearkey-license needs --encrypt or --cpix"},
		{[]string{"--encrypt", "cenc", "--key-id", testKeyID, "--key", testKey, "--clearkey-license", "ftp://k"}, exitFailure, "not an http(s) URL"},
		{[]string{"--cpix", sampleCPIX, "--key", testKey}, exitUsage, "cannot go with --cpix"},
		{[]string{"--cpix", sampleCPIX, "--cpix-token-file", "t"}, exitUsage, "--cpix-token-file needs --cpix with a key server's URL"},
		{[]string{"--cpix", "http://keys.example/cpix"}, exitFailure, "plain http only to a loopback host"},
	} {
		parent := t.TempDir()
		args := append([]string{"package", "--quiet", sample("ladder_360p.mp4"), "-o", filepath.Join(parent, "out")}, c.args...)
		code, _, stderr := runReel(t, args...)
		if code != c.code || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", c.args, code, stderr, c.code, c.want)
		}
		assertOneLine(t, "stderr", stderr)
		if left := dirEntries(t, parent); len(left) != 0 {
			t.Errorf("%v: left behind %v", c.args, left)
		}
	}
}
