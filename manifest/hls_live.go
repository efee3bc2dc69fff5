package manifest

import (
	"encoding/base64"
	"encoding/hex"
	"math/bits"
	"strconv"
	"strings"
	"time"
)

// The live media playlist follows RFC 8216 and its revision, draft-pantos-hls-rfc8216bis-16
// ("bis" below), which adds the low-latency tags: EXT-X-PART-INF (§4.4.3.7),
// EXT-X-SERVER-CONTROL (§4.4.3.8), EXT-X-PART (§4.4.4.9), EXT-X-SKIP (§4.4.5.2),
// EXT-X-PRELOAD-HINT (§4.4.5.3) and EXT-X-RENDITION-REPORT (§4.4.5.4).
//
// A playlist looks like this (parts on, a delta update, two segments with parts listed):
//
//	#EXTM3U
//	#EXT-X-VERSION:9
//	#EXT-X-TARGETDURATION:2
//	#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12,PART-HOLD-BACK=1.5015
//	#EXT-X-PART-INF:PART-TARGET=0.5005
//	#EXT-X-MEDIA-SEQUENCE:100
//	#EXT-X-INDEPENDENT-SEGMENTS
//	#EXT-X-SKIP:SKIPPED-SEGMENTS=6
//	#EXT-X-MAP:URI="init.mp4"
//	#EXT-X-PROGRAM-DATE-TIME:2026-11-21T23:18:34.123Z
//	#EXT-X-PART:DURATION=0.5005,URI="seg_106.0.m4s",INDEPENDENT=YES
//	...
//	#EXTINF:2.002,
//	seg_106.m4s
//	...
//	#EXT-X-PART:DURATION=0.5005,URI="seg_109.0.m4s",INDEPENDENT=YES
//	#EXT-X-PRELOAD-HINT:TYPE=PART,URI="seg_109.1.m4s"
//	#EXT-X-RENDITION-REPORT:URI="../video_360p/index.m3u8",LAST-MSN=109,LAST-PART=0

// pdtLayout writes EXT-X-PROGRAM-DATE-TIME in UTC with milliseconds (RFC 8216 §4.3.2.6).
const pdtLayout = "2006-01-02T15:04:05.000Z"

// HLSLiveMedia renders t's live media playlist for one request; URIs are relative to t's
// folder. Without p.Live it is HLSMedia. Call Validate first, as for every writer.
//
// Rules applied here:
//   - EXT-X-TARGETDURATION: the longest segment in the snapshot (skipped ones too, so a delta
//     update keeps the full playlist's value), rounded to the nearest second (RFC 8216
//     §4.3.3.1, version 6+), never below Live.TargetDuration rounded the same way, nor 1.
//   - EXT-X-PART-INF PART-TARGET: Live.PartTarget, raised to the longest part if one is
//     longer, since every part MUST be at most the part target (bis §4.4.4.9). Set PartTarget to
//     the real part duration in whole frames (e.g. 0.5005 s at 29.97 fps) to keep it stable.
//   - EXT-X-SERVER-CONTROL: HOLD-BACK at least 3 target durations, PART-HOLD-BACK at least 3
//     part targets of the rendition with the longest parts (the default; bis §4.4.3.8 says
//     MUST 2, SHOULD 3, and 3 × the largest part target across renditions), CAN-SKIP-UNTIL at
//     least 6 target durations; HOLD-BACK and CAN-SKIP-UNTIL only when configured.
//   - Delta update (opt.Skip, CAN-SKIP-UNTIL on, not ended; bis §6.2.5.1): segments that end
//     more than the skip boundary before the last segment's end become one EXT-X-SKIP; media
//     sequence, discontinuity sequence and target stay the full playlist's (bis §4.4.5.2). The
//     skip needs EXT-X-VERSION 9 (bis §8).
//   - Parts are listed for segments that end within 3 target durations of the last segment's
//     end (bis §6.2.2), then the in-progress parts and the preload hint, never after
//     EXT-X-ENDLIST (bis §4.4.5.3).
func (p *Presentation) HLSLiveMedia(t *Track, opt LiveMediaOptions) []byte {
	l := p.Live
	if l == nil {
		return p.HLSMedia(t)
	}
	ts := t.Timescale
	segs := t.Segments
	// A text track has no parts: its playlist is reloaded by segment, and a player loads its
	// few bytes whole (rfc8216bis §4.4.3.7 only requires EXT-X-PART-INF with EXT-X-PART).
	parts := l.PartTarget > 0 && t.Kind != Text
	// Text is clear, also under key rotation; WebVTT segments have no init segment.
	keyed := l.Keys != nil && t.Kind != Text

	var longest int64
	for _, s := range segs {
		longest = max(longest, extinfUnits(s.Duration, ts))
	}
	target := max((longest+extinfScale/2)/extinfScale, int64((l.TargetDuration+time.Second/2)/time.Second), 1)

	var partTarget, maxPartTarget int64
	if parts {
		partTarget = l.partTargetUnits(t)
		for _, o := range p.Tracks() {
			maxPartTarget = max(maxPartTarget, l.partTargetUnits(o))
		}
	}

	var control []string
	if l.CanBlockReload {
		control = append(control, "CAN-BLOCK-RELOAD=YES")
	}
	var skipBoundary int64 // in EXTINF units
	if l.CanSkipUntil > 0 {
		skipBoundary = max(durationUnits(l.CanSkipUntil), 6*target*extinfScale)
		control = append(control, "CAN-SKIP-UNTIL="+units(skipBoundary))
	}
	if l.HoldBack > 0 {
		control = append(control, "HOLD-BACK="+units(max(durationUnits(l.HoldBack), 3*target*extinfScale)))
	}
	if parts {
		// Required with EXT-X-PART-INF; at least 3 part targets of the rendition with the
		// longest ones, so that all renditions play at the same distance (bis §4.4.3.8).
		control = append(control, "PART-HOLD-BACK="+units(max(durationUnits(l.PartHoldBack), 3*maxPartTarget)))
	}

	// The end of the last complete segment: the reference for skipping and for part listing.
	var end uint64
	if n := len(segs); n > 0 {
		end = segs[n-1].Start + segs[n-1].Duration
	}
	skipped := 0
	if opt.Skip && skipBoundary > 0 && !l.Ended {
		for skipped < len(segs) && longerThan(end-(segs[skipped].Start+segs[skipped].Duration), ts, skipBoundary) {
			skipped++
		}
	}

	f := hlsFeatures{initMap: t.hasInit(), skip: skipped > 0, sampleAESKey: keyed}
	for _, s := range segs[skipped:] {
		f.floatDurations = f.floatDurations || extinfUnits(s.Duration, ts)%extinfScale != 0
	}

	var b strings.Builder
	b.WriteString("#EXTM3U\n")
	b.WriteString("#EXT-X-VERSION:" + strconv.Itoa(f.version()) + "\n")
	b.WriteString("#EXT-X-TARGETDURATION:" + strconv.FormatInt(target, 10) + "\n")
	if len(control) > 0 {
		b.WriteString("#EXT-X-SERVER-CONTROL:" + strings.Join(control, ",") + "\n")
	}
	if parts {
		b.WriteString("#EXT-X-PART-INF:PART-TARGET=" + units(partTarget) + "\n")
	}
	first := t.liveNext()
	if len(segs) > 0 {
		first = segs[0].Number
	}
	b.WriteString("#EXT-X-MEDIA-SEQUENCE:" + strconv.FormatUint(first, 10) + "\n")
	if t.DiscontinuitySequence > 0 {
		b.WriteString("#EXT-X-DISCONTINUITY-SEQUENCE:" + strconv.FormatUint(t.DiscontinuitySequence, 10) + "\n")
	}
	switch {
	case l.Ended && (l.PlaylistType == PlaylistEvent || l.PlaylistType == PlaylistVOD):
		// An EVENT playlist never lost a segment, so once ended it is a complete VOD one.
		b.WriteString("#EXT-X-PLAYLIST-TYPE:VOD\n")
	case l.PlaylistType == PlaylistEvent:
		b.WriteString("#EXT-X-PLAYLIST-TYPE:EVENT\n")
	}
	b.WriteString("#EXT-X-INDEPENDENT-SEGMENTS\n")
	if skipped > 0 {
		b.WriteString("#EXT-X-SKIP:SKIPPED-SEGMENTS=" + strconv.Itoa(skipped) + "\n")
	}
	// After EXT-X-SKIP, so that it applies to the segments that remain: the skip replaces the
	// tags applied to the skipped segments (bis §4.4.5.2), and the client takes those from its
	// previous copy.
	var period *KeyPeriod // the key period whose EXT-X-KEY and EXT-X-MAP apply
	if !keyed && t.hasInit() {
		writeMap(&b, t)
	}
	// keyChange writes the tags of segment n's key period when it is not the one in force.
	keyChange := func(n uint64) {
		if !keyed {
			return
		}
		if kp := l.Keys.period(n); kp != nil && kp != period {
			period = kp
			l.Keys.writeKeyAndMap(&b, kp, t.Kind)
		}
	}

	partWindow := 3 * uint64(target) * uint64(ts)
	for _, s := range segs[skipped:] {
		if s.Discontinuity {
			b.WriteString("#EXT-X-DISCONTINUITY\n")
		}
		keyChange(s.Number)
		// DISCONTINUITY and PROGRAM-DATE-TIME come before the segment's first part (bis §4.4.4.9).
		b.WriteString("#EXT-X-PROGRAM-DATE-TIME:" + s.ProgramDateTime.UTC().Round(time.Millisecond).Format(pdtLayout) + "\n")
		if parts && end-(s.Start+s.Duration) <= partWindow {
			for _, part := range s.Parts {
				writePart(&b, part, ts)
			}
		}
		writeEntry(&b, s.Duration, ts, s.Range, s.URI)
	}
	if parts && !l.Ended {
		if len(t.LiveParts) > 0 {
			if t.NextDiscontinuity {
				b.WriteString("#EXT-X-DISCONTINUITY\n")
			}
			keyChange(t.liveNext())
			if !t.NextProgramDateTime.IsZero() {
				b.WriteString("#EXT-X-PROGRAM-DATE-TIME:" + t.NextProgramDateTime.UTC().Round(time.Millisecond).Format(pdtLayout) + "\n")
			}
			for _, part := range t.LiveParts {
				writePart(&b, part, ts)
			}
		}
		if opt.PreloadHint != "" {
			// A hinted part that opens a new key period is preceded by that period's tags, so
			// that the player loads it with the right key and init segment (hls.js gives the
			// hint the KEY and MAP parsed before it).
			keyChange(opt.PreloadHintNumber)
			b.WriteString("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=" + quote(opt.PreloadHint) + "\n")
		}
	}
	if l.Ended {
		b.WriteString("#EXT-X-ENDLIST\n")
	}
	for _, r := range opt.Reports {
		b.WriteString("#EXT-X-RENDITION-REPORT:URI=" + quote(r.URI) + ",LAST-MSN=" + strconv.FormatUint(r.LastMSN, 10))
		if r.LastPart >= 0 {
			b.WriteString(",LAST-PART=" + strconv.Itoa(r.LastPart))
		}
		b.WriteString("\n")
	}
	return []byte(b.String())
}

// writeKeyAndMap writes the key tags of key period kp for a track of kind kind — those of a
// VOD playlist for a Protection with the period's KID of that kind and its DRM systems
// (hlsKeyLines: each system's, the identity key with a key URI, ClearKey always, whose data:
// URI is what hls.js reads the key ID of an org.w3.clearkey key from) — and the EXT-X-MAP of its init segment: the key applies to the init segment and every segment
// after it (rfc8216bis §4.4.4.4, §4.4.4.5).
func (k *LiveKeys) writeKeyAndMap(b *strings.Builder, kp *KeyPeriod, kind Kind) {
	pr := kp.protection(k.Scheme, kind)
	if k.KeyURI != "" {
		pr.KeyURI = strings.ReplaceAll(k.KeyURI, "{kid}", hex.EncodeToString(pr.KID[:]))
	}
	writeKeys(b, hlsKeyLines(pr, false))
	b.WriteString("#EXT-X-MAP:URI=" + quote(kp.InitURI) + "\n")
}

// ClearKeyFormat is the HLS KEYFORMAT of W3C ClearKey.
const ClearKeyFormat = "org.w3.clearkey"

// ClearKeyURI is the URI of a ClearKey EXT-X-KEY: the KID, base64, as a data: URI. It names the
// key; the key itself comes from the player's configuration.
func ClearKeyURI(kid [16]byte) string {
	return "data:text/plain;base64," + base64.StdEncoding.EncodeToString(kid[:])
}

// partTargetUnits is t's PART-TARGET in EXTINF units: the configured part target rounded up,
// or t's longest part if that is longer.
func (l *Live) partTargetUnits(t *Track) int64 {
	u := durationUnits(l.PartTarget)
	for _, s := range t.Segments {
		for _, part := range s.Parts {
			u = max(u, extinfUnits(part.Duration, t.Timescale))
		}
	}
	for _, part := range t.LiveParts {
		u = max(u, extinfUnits(part.Duration, t.Timescale))
	}
	return u
}

func writePart(b *strings.Builder, part Part, timescale uint32) {
	b.WriteString("#EXT-X-PART:DURATION=" + extinf(part.Duration, timescale) + ",URI=" + quote(part.URI))
	if part.Independent {
		b.WriteString(",INDEPENDENT=YES")
	}
	b.WriteString("\n")
}

// durationUnits converts a configured duration to EXTINF units, rounding up so that a limit
// written from it is never below the configured value.
func durationUnits(d time.Duration) int64 {
	const unit = time.Second / extinfScale
	return int64((d + unit - 1) / unit)
}

// units formats EXTINF units as decimal seconds.
func units(u int64) string {
	return decimal(u/extinfScale, u%extinfScale, 5)
}

// longerThan reports whether ticks/timescale seconds exceed u EXTINF units, exactly.
func longerThan(ticks uint64, timescale uint32, u int64) bool {
	hi1, lo1 := bits.Mul64(ticks, extinfScale)
	hi2, lo2 := bits.Mul64(uint64(u), uint64(timescale))
	return hi1 > hi2 || hi1 == hi2 && lo1 > lo2
}
