package manifest

import (
	"bytes"
	"fmt"
	"net/url"
	"strings"
)

// Discovery is every URL a manifest references that a cache can hold, for warming a cache
// with a whole presentation (the edge's warm-up, edge/warm.go): the playlists to read in turn,
// and the resources — init segments, segments, parts — to fetch. Discover fills it.
type Discovery struct {
	Format Format
	// Playlists are the HLS playlists a master lists — variants (EXT-X-STREAM-INF), renditions
	// (EXT-X-MEDIA URI: audio, subtitles, video) and I-frame playlists — to read in turn.
	// Empty for a media playlist and for an MPD (an MPD describes everything itself).
	Playlists []string
	// Resources are what is fetched and not read: EXT-X-MAP init segments, media segments and
	// LL-HLS parts (EXT-X-PART); an MPD's initialization segments, index segments and media
	// segments, from every addressing mode. A resource listed as byte ranges (EXT-X-BYTERANGE,
	// SegmentURL@mediaRange, SegmentBase) is listed once, as the whole resource.
	Resources []string
	// Truncated: the manifest references more than Discover's limit; the rest are left out.
	Truncated bool
}

// Discover reads an HLS playlist or a DASH MPD (told apart as Classify does) and lists the
// URLs it references, resolved against base (RFC 3986 §5.2), each once, in the order the
// manifest gives them, at most limit of them in all (Truncated tells when more were left
// out). What is not content a cache holds for players is skipped: key URIs (EXT-X-KEY,
// EXT-X-SESSION-KEY; license and key servers), EXT-X-SESSION-DATA, EXT-X-CONTENT-STEERING,
// EXT-X-PRELOAD-HINT (a part that doesn't exist yet), EXT-X-RENDITION-REPORT (a playlist the
// master lists anyway). A live manifest is read as it is now: what it lists.
//
// In an MPD, BaseURLs apply from the MPD down to the Representation (§5.6.4; the first of
// several, the others being alternatives), and segments are listed for each addressing mode
// (§5.3.9): SegmentTemplate with a SegmentTimeline (S@r=-1 repeated up to the next S@t or the
// end of the Period), SegmentTemplate with @duration (over the Period's duration: Period@duration,
// else up to the next Period@start, else up to MPD@mediaPresentationDuration; not listed when
// none is known, as in a dynamic MPD), SegmentList, and SegmentBase or a BaseURL alone (the
// Representation's resource, whole). Discover reads outside bytes: it never panics, and its
// work and memory are bounded by the input's size and limit.
func Discover(data []byte, base *url.URL, limit int) (Discovery, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	d := &discoverer{limit: max(limit, 0), seen: map[string]bool{}}
	var err error
	switch {
	case bytes.HasPrefix(trimmed, []byte("#EXTM3U")):
		err = d.hls(trimmed, base)
	case bytes.HasPrefix(trimmed, []byte("<")):
		err = d.dash(trimmed, base)
	default:
		return Discovery{}, ErrNotManifest
	}
	if err != nil {
		return Discovery{}, err
	}
	return d.out, nil
}

// discoverer collects a Discovery's URLs, each once, up to limit.
type discoverer struct {
	out   Discovery
	limit int
	seen  map[string]bool
	// expanded counts the segment templates expanded, bounded as the URLs are.
	expanded int
}

// full: limit URLs are listed; any other is left out (and Truncated set when one is).
func (d *discoverer) full() bool { return len(d.seen) >= d.limit }

// add lists ref, resolved against base, as a playlist or a resource, unless it is empty,
// unparsable or listed already.
func (d *discoverer) add(base *url.URL, ref string, playlist bool) {
	u, ok := resolveRef(base, ref)
	if !ok || d.seen[u] {
		return
	}
	if d.full() {
		d.out.Truncated = true
		return
	}
	d.seen[u] = true
	if playlist {
		d.out.Playlists = append(d.out.Playlists, u)
	} else {
		d.out.Resources = append(d.out.Resources, u)
	}
}

// hls is a line scan (RFC 8216 §4.1), as classifyHLS's: the URI lines and the URI attributes
// of the tags that name content.
func (d *discoverer) hls(data []byte, base *url.URL) error {
	var master, media, variantNext bool
	for line := range playlistLines(data) {
		if line[0] != '#' {
			// The URI after EXT-X-STREAM-INF is a variant playlist (§4.3.4.2); any other
			// URI line is a media segment (§4.3.2), a byte range of one or whole.
			d.add(base, string(line), variantNext)
			variantNext = false
			continue
		}
		tag, value, _ := strings.Cut(string(line), ":")
		switch tag {
		case "#EXT-X-STREAM-INF":
			master, variantNext = true, true
		case "#EXT-X-I-FRAME-STREAM-INF", "#EXT-X-MEDIA": // §4.3.4.3, §4.3.4.1 (URI optional)
			master = true
			d.add(base, attr(value, "URI"), true)
		case "#EXT-X-MAP": // §4.3.2.5; with BYTERANGE, the whole resource
			d.add(base, attr(value, "URI"), false)
		case "#EXT-X-PART": // rfc8216bis §4.4.4.9
			d.add(base, attr(value, "URI"), false)
		case "#EXTINF", "#EXT-X-TARGETDURATION":
			media = true
		}
	}
	if master && media {
		return fmt.Errorf("playlist has both master and media tags (RFC 8216 §4.1)")
	}
	d.out.Format = FormatHLSMedia
	if master {
		d.out.Format = FormatHLSMaster
	}
	return nil
}
