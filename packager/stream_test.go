package packager

import (
	"bytes"
	"context"
	"encoding/binary"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reelvideo/reel/packager/live"
)

// fragmentedStream makes a few seconds of fragmented MP4 the way an encoder pipes it
// (ffmpeg -movflags frag_keyframe+empty_moov+default_base_moof, half-second fragments, B-frames).
func fragmentedStream(t testing.TB, seconds int) []byte {
	t.Helper()
	return encodeStream(t,
		"-f", "lavfi", "-i", "testsrc2=size=320x180:rate=30", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-t", strconv.Itoa(seconds),
		"-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-keyint_min", "30", "-sc_threshold", "0", "-bf", "2",
		"-c:a", "aac", "-b:a", "64k")
}

// encodeStream runs ffmpeg with the input and encoding args given and returns its output as
// a fragmented MP4 stream with half-second fragments.
func encodeStream(t testing.TB, args ...string) []byte {
	t.Helper()
	ffmpeg := requireTool(t, "ffmpeg")
	out := filepath.Join(t.TempDir(), "stream.mp4")
	cmd := exec.Command(ffmpeg, append(append([]string{"-v", "error", "-y"}, args...),
		"-f", "mp4", "-movflags", "frag_keyframe+empty_moov+default_base_moof", "-frag_duration", "500000", out)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, b)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestReadStream: an encoder's fragmented MP4 stream becomes a live ladder: one rendition per
// track, segments cut at keyframes with half-second parts, an ended event at EOF, and the DVR
// copy decodes with the encoder's timestamps.
func TestReadStream(t *testing.T) {
	data := fragmentedStream(t, 7)
	ch, srv := newChannel(t, live.Config{SegmentDuration: 2 * time.Second, PartDuration: 500 * time.Millisecond, Window: time.Minute})
	if err := ReadStream(context.Background(), bytes.NewReader(data), ch, StreamOptions{Name: "stdin"}); err != nil {
		t.Fatal(err)
	}
	master := get(t, srv, "/live/test/master.m3u8").Body.String()
	if !strings.Contains(master, "video_180p/index.m3u8") || !strings.Contains(master, "mp4a.40.2") || !strings.Contains(master, "RESOLUTION=320x180") {
		t.Fatalf("master:\n%s", master)
	}
	for _, id := range []string{"video_180p", "audio"} {
		pl := get(t, srv, "/live/test/"+id+"/index.m3u8").Body.String()
		segs := extinfRe.FindAllStringSubmatch(pl, -1)
		if !strings.Contains(pl, "#EXT-X-ENDLIST") || len(segs) < 3 {
			t.Fatalf("%s:\n%s", id, pl)
		}
		var all bytes.Buffer
		all.Write(get(t, srv, "/live/test/"+id+"/init.mp4").Body.Bytes())
		for _, s := range segs {
			all.Write(get(t, srv, "/live/test/"+id+"/"+s[2]).Body.Bytes())
		}
		path := filepath.Join(t.TempDir(), id+".mp4")
		os.WriteFile(path, all.Bytes(), 0o644)
		v := ffprobeJSON(t, "-count_frames", "-show_entries", "stream=nb_read_frames,codec_name", path)
		st := v["streams"].([]any)[0].(map[string]any)
		frames := str(st, "nb_read_frames")
		want := map[string]string{"video_180p": "210"}[id]
		if want != "" && frames != want {
			t.Errorf("%s: %s frames decoded, want %s", id, frames, want)
		}
		if id == "audio" && (frames == "" || frames == "0") {
			t.Errorf("audio: no frames decoded")
		}
	}
}

// TestReadStreamBadInput: garbage, truncation, misplaced and oversized boxes give one error
// naming the stream and where, and nothing already published is lost.
func TestReadStreamBadInput(t *testing.T) {
	good := fragmentedStream(t, 2)
	moovEnd := 0
	for p := 0; p+8 <= len(good); {
		size := int(binary.BigEndian.Uint32(good[p:]))
		if string(good[p+4:p+8]) == "moov" {
			moovEnd = p + size
			break
		}
		p += size
	}
	big := make([]byte, 8)
	binary.BigEndian.PutUint32(big, 0xFFFFFFF0)
	copy(big[4:], "mdat")
	for _, tc := range []struct {
		name, data, want string
	}{
		{"not mp4", "#EXTM3U\nthis is a playlist, not a stream\n", "not an MP4 box"},
		{"empty", "", "ended before a moov"},
		{"moof first", string(good[moovEnd:]), "moof before moov"},
		{"truncated", string(good[:len(good)-100]), "truncated"},
		{"huge box", string(good[:moovEnd]) + string(big), "larger than"},
		{"zero size box", string(good[:moovEnd]) + "\x00\x00\x00\x00mdat", "extends to the end"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ch, _ := newChannel(t, live.Config{})
			err := ReadStream(context.Background(), strings.NewReader(tc.data), ch, StreamOptions{Name: "stdin"})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "stdin: ") || strings.Contains(err.Error(), "\n") {
				t.Fatalf("got %v, want one line starting with the stream's name and containing %q", err, tc.want)
			}
		})
	}
}

// FuzzReadStream: no input panics or hangs the stream reader.
func FuzzReadStream(f *testing.F) {
	good := fragmentedStream(f, 1)
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Fuzz(func(t *testing.T, data []byte) {
		ch, err := live.NewChannel(live.Config{Name: "fuzz", Dir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		ReadStream(context.Background(), bytes.NewReader(data), ch, StreamOptions{Name: "fuzz"})
	})
}

// unalignedLadder is ffmpeg input and encoding arguments for 9 s of a two-rung ladder at
// 24 fps: keyframes every 2 s (48 frames) in video_180p, every 2.5 s (60) in video_144p, off
// a 2 s segment grid.
var unalignedLadder = []string{"-f", "lavfi", "-i", "testsrc2=size=320x180:rate=24", "-t", "9",
	"-filter_complex", "[0:v]split=2[a][b];[b]scale=256:144[c]", "-map", "[a]", "-map", "[c]",
	"-c:v", "libx264", "-preset", "ultrafast", "-sc_threshold", "0", "-bf", "0",
	"-g:v:0", "48", "-keyint_min:v:0", "48", "-g:v:1", "60", "-keyint_min:v:1", "60"}

// TestReadStreamUnalignedRendition: a stream whose second rendition has its keyframes every
// 2.5 s, off the 2 s segment grid the first keeps, is reported — a warning per extended
// segment of that rendition, and the metric — and both renditions still play whole: every
// segment starts with a keyframe and the DVR copies decode every frame.
func TestReadStreamUnalignedRendition(t *testing.T) {
	data := encodeStream(t, unalignedLadder...)
	var logs bytes.Buffer
	m := live.NewMetrics()
	ch, srv := newChannel(t, live.Config{SegmentDuration: 2 * time.Second, PartDuration: 500 * time.Millisecond, Window: time.Minute,
		Metrics: m, Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err := ReadStream(context.Background(), bytes.NewReader(data), ch, StreamOptions{Name: "stdin"}); err != nil {
		t.Fatal(err)
	}
	// video_144p's keyframes at 2.5, 5, 7.5 s: segments 0, 1, 2 and 3 each run past a grid line.
	warned := regexp.MustCompile(`track=(\S+) segment=(\d+) `).FindAllStringSubmatch(logs.String(), -1)
	var got []string
	for _, w := range warned {
		got = append(got, w[1]+"/"+w[2])
	}
	if strings.Join(got, " ") != "video_144p/0 video_144p/1 video_144p/2 video_144p/3" {
		t.Errorf("warnings for %v, want video_144p's segments 0-3:\n%s", got, logs.String())
	}
	metrics := get(t, m.Handler(), "/metrics").Body.String()
	if want := `reel_live_unaligned_segments_total{channel="test",track="video_144p"} 4`; !strings.Contains(metrics, want) {
		t.Errorf("missing %s in:\n%s", want, metrics)
	}
	for id, frames := range map[string]string{"video_180p": "216", "video_144p": "216"} {
		init := get(t, srv, "/live/test/"+id+"/init.mp4").Body.Bytes()
		all := bytes.NewBuffer(bytes.Clone(init))
		for _, s := range extinfRe.FindAllStringSubmatch(get(t, srv, "/live/test/"+id+"/index.m3u8").Body.String(), -1) {
			seg := get(t, srv, "/live/test/"+id+"/"+s[2]).Body.Bytes()
			all.Write(seg)
			path := filepath.Join(t.TempDir(), "seg.mp4")
			os.WriteFile(path, append(bytes.Clone(init), seg...), 0o644)
			v := ffprobeJSON(t, "-show_entries", "frame=key_frame", "-read_intervals", "%+#1", path)
			if f, _ := v["frames"].([]any); len(f) == 0 || num(f[0].(map[string]any), "key_frame") != 1 {
				t.Errorf("%s %s does not start with a keyframe: %v", id, s[2], v)
			}
		}
		path := filepath.Join(t.TempDir(), id+".mp4")
		os.WriteFile(path, all.Bytes(), 0o644)
		v := ffprobeJSON(t, "-count_frames", "-show_entries", "stream=nb_read_frames", path)
		if got := str(v["streams"].([]any)[0].(map[string]any), "nb_read_frames"); got != frames {
			t.Errorf("%s: %s frames decoded, want %s", id, got, frames)
		}
	}
}
