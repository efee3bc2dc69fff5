package manifest

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"slices"
	"strings"
)

// HLS key signalling (rfc8216bis §4.4.4.4 EXT-X-KEY, §4.4.6.5 EXT-X-SESSION-KEY). An encrypted
// track's playlists carry one EXT-X-KEY per way a player may get its key, all with the same
// METHOD, and the master one EXT-X-SESSION-KEY for each distinct key tag of any track, so a
// player picks the KEYFORMAT its key system understands:
//   - "identity", when a key URI is given: the URI serves the key itself;
//   - one per DRM system of the track's key (from a CPIX document): the document's own lines
//     when it gives them, else Widevine (the pssh box as a data URI, as Shaka Packager and
//     hls.js do), PlayReady (the PlayReady Object, the pssh box's data, as a data URI) and,
//     for cbcs, FairPlay (the document's skd:// URI);
//   - ClearKey, always: KEYFORMAT="org.w3.clearkey" with the KID as a data URI, which hls.js
//     turns into the key ID it asks the ClearKey CDM for.
//
// METHOD is SAMPLE-AES for cbcs; SAMPLE-AES-CTR for cenc is not in the RFC, but hls.js and
// Shaka accept it.

// hlsMethod is the METHOD of pr's key tags.
func (pr *Protection) hlsMethod() string {
	if pr.Scheme == "cenc" {
		return "SAMPLE-AES-CTR"
	}
	return "SAMPLE-AES"
}

// hlsKeyLines returns the key tags of a playlist of a track protected by pr ("#EXT-X-KEY:…"
// lines), or of the master ("#EXT-X-SESSION-KEY:…"); none when pr is nil.
func hlsKeyLines(pr *Protection, master bool) []string {
	if pr == nil {
		return nil
	}
	tag := "#EXT-X-KEY:"
	if master {
		tag = "#EXT-X-SESSION-KEY:"
	}
	if pr.Scheme == "aes-128" {
		// Whole-segment encryption has one key, at its URI, and no DRM system. RFC 8216
		// §4.3.2.4: no KEYFORMAT (identity is the default, and KEYFORMAT would need version 5);
		// IV only when fixed, else each segment's media sequence number (§5.2).
		if pr.KeyURI == "" {
			return nil
		}
		attrs := "METHOD=AES-128,URI=" + quote(pr.KeyURI)
		if len(pr.IV) > 0 {
			attrs += ",IV=0x" + hex.EncodeToString(pr.IV)
		}
		return []string{tag + attrs}
	}
	method := "METHOD=" + pr.hlsMethod()
	var lines []string
	add := func(uri string, more ...string) {
		lines = append(lines, tag+method+",URI="+quote(uri)+strings.Join(more, ""))
	}
	format := func(f string) string { return ",KEYFORMAT=" + quote(f) + ",KEYFORMATVERSIONS=" + quote("1") }
	if pr.KeyURI != "" {
		add(pr.KeyURI, ",KEYFORMAT="+quote("identity"))
	}
	for _, s := range pr.Systems {
		verbatim := s.HLSMedia
		if master {
			verbatim = s.HLSMaster
		}
		switch {
		case verbatim != "":
			lines = append(lines, strings.Split(verbatim, "\n")...)
		case s.ID == SystemWidevine && len(s.PSSH) > 0:
			add("data:text/plain;base64,"+base64.StdEncoding.EncodeToString(s.PSSH),
				",KEYID=0x"+strings.ToUpper(hex.EncodeToString(pr.KID[:])), format("urn:uuid:"+uuid(SystemWidevine)))
		case s.ID == SystemPlayReady && len(psshData(s.PSSH)) > 0:
			add("data:text/plain;charset=UTF-16;base64,"+base64.StdEncoding.EncodeToString(psshData(s.PSSH)), format("com.microsoft.playready"))
		case s.ID == SystemFairPlay && s.KeyURI != "" && pr.Scheme == "cbcs":
			// FairPlay Streaming decrypts cbcs only: a cenc track has no FairPlay key tag.
			add(s.KeyURI, format("com.apple.streamingkeydelivery"))
		}
	}
	add("data:text/plain;base64,"+base64.StdEncoding.EncodeToString(pr.KID[:]), format("org.w3.clearkey"))
	return lines
}

// psshData is the Data of a pssh box (ISO/IEC 23001-7 §8.1.1), nil if b is not one.
func psshData(b []byte) []byte {
	if len(b) < 32 || string(b[4:8]) != "pssh" || int(binary.BigEndian.Uint32(b)) != len(b) {
		return nil
	}
	off := 28
	if b[8] > 0 { // version 1: KID_count and KIDs before DataSize
		n := int(binary.BigEndian.Uint32(b[28:]))
		off = 32 + 16*n
		if n > len(b)/16 || off+4 > len(b) {
			return nil
		}
	}
	size := int(binary.BigEndian.Uint32(b[off:]))
	if size < 0 || off+4+size != len(b) {
		return nil
	}
	return b[off+4:]
}

// hlsSessionKeys is the master's EXT-X-SESSION-KEY lines: each distinct one of every track's,
// video first.
func (p *Presentation) hlsSessionKeys() []string {
	var out []string
	for _, t := range p.Tracks() {
		for _, l := range hlsKeyLines(p.ProtectionOf(t), true) {
			if !slices.Contains(out, l) {
				out = append(out, l)
			}
		}
	}
	return out
}

// writeKeys writes key tags before EXT-X-MAP: they apply to the Media Initialization Section
// and every segment after it (rfc8216bis §4.4.4.4, §4.4.4.5).
func writeKeys(b *strings.Builder, lines []string) {
	for _, l := range lines {
		b.WriteString(l + "\n")
	}
}
