#!/usr/bin/env bash
# Regenerates the bundled sample ladder and the bad inputs used by negative tests.
# Needs ffmpeg (Debian's ffmpeg 5.1 made the committed files). Run from anywhere:
#   bash samples/make-samples.sh
set -euo pipefail
cd "$(dirname "$0")"

DUR=12
# Closed 2 s GOPs (60 frames at 30 fps) with keyframes forced on the same instants in every
# rung, so that every rendition can be cut at identical boundaries.
GOP=(-g 60 -keyint_min 60 -sc_threshold 0 -flags +cgop -x264-params open-gop=0
     -force_key_frames 'expr:gte(t,n_forced*2)')
SRC_V="testsrc2=size=1280x720:rate=30:duration=${DUR}"
SRC_A="sine=frequency=440:sample_rate=48000:duration=${DUR}"
AUDIO=(-c:a aac -profile:a aac_low -ar 48000 -ac 2 -b:a 96k)

rung() { # name width height video-bitrate
  ffmpeg -hide_banner -loglevel error -y \
    -f lavfi -i "$SRC_V" -f lavfi -i "$SRC_A" \
    -vf "scale=$2:$3,setdar=16/9" \
    -c:v libx264 -profile:v high -preset veryfast -b:v "$4" -maxrate "$4" -bufsize "$4" \
    "${GOP[@]}" "${AUDIO[@]}" -movflags +faststart "$1"
}

rung ladder_720p.mp4 1280 720 1500k
rung ladder_480p.mp4 854 480 800k
rung ladder_360p.mp4 640 360 400k

# A second audio language, audio only, for demuxed multi-language audio groups.
ffmpeg -hide_banner -loglevel error -y -f lavfi -i "sine=frequency=660:sample_rate=48000:duration=${DUR}" \
  "${AUDIO[@]}" -metadata:s:a:0 language=fra -movflags +faststart audio_fra.mp4

# HEVC (hvc1) rung, 4 s, to exercise the HEVC path without growing the folder much.
ffmpeg -hide_banner -loglevel error -y -f lavfi -i "testsrc2=size=640x360:rate=30:duration=4" \
  -c:v libx265 -preset veryfast -b:v 300k -tag:v hvc1 \
  -x265-params "keyint=60:min-keyint=60:scenecut=0:open-gop=0:log-level=error" \
  -force_key_frames 'expr:gte(t,n_forced*2)' -movflags +faststart hevc_360p.mp4

# Tiny progressive and fragmented files: fuzz seeds small enough for the fuzzer to mutate
# structure rather than media, and an ffmpeg-made fragmented input for tests.
mkdir -p fuzz
ffmpeg -hide_banner -loglevel error -y -f lavfi -i "testsrc2=size=64x36:rate=10:duration=1" \
  -f lavfi -i "sine=sample_rate=8000:duration=1" -c:v libx264 -preset ultrafast -g 5 \
  -c:a aac -b:a 8k -movflags +faststart fuzz/tiny.mp4
ffmpeg -hide_banner -loglevel error -y -i fuzz/tiny.mp4 -c copy \
  -movflags frag_keyframe+empty_moov+default_base_moof fuzz/tiny_frag.mp4

# --- bad inputs -----------------------------------------------------------------------------
# Keyframes every 1.5 s instead of 2 s: cannot be cut at the same boundaries as the ladder.
ffmpeg -hide_banner -loglevel error -y -f lavfi -i "testsrc2=size=640x360:rate=30:duration=${DUR}" \
  -c:v libx264 -profile:v high -preset veryfast -b:v 300k \
  -g 45 -keyint_min 45 -sc_threshold 0 -flags +cgop -x264-params open-gop=0 \
  -force_key_frames 'expr:gte(t,n_forced*1.5)' -movflags +faststart bad/unaligned_gop.mp4
# The first 60% of a real file: moov is intact (faststart) but the media data is cut off.
size=$(stat -c %s ladder_360p.mp4)
head -c $((size * 6 / 10)) ladder_360p.mp4 > bad/truncated.mp4
# Audio and no video.
ffmpeg -hide_banner -loglevel error -y -f lavfi -i "$SRC_A" "${AUDIO[@]}" -movflags +faststart bad/audio_only.mp4
# A codec Reel does not package (MPEG-4 Part 2 video).
ffmpeg -hide_banner -loglevel error -y -f lavfi -i "testsrc2=size=320x180:rate=30:duration=2" \
  -c:v mpeg4 -b:v 100k -movflags +faststart bad/unsupported_codec.mp4
# Not an MP4 at all.
printf 'This is a text file, not an MP4.\n' > bad/not_an_mp4.mp4
ls -l . bad
