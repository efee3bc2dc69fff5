package edge

import (
	"fmt"
	"mime"
	"path"
	"strings"
)

// Compression is how the edge compresses text responses for the clients that accept it
// (compress.go; README "Compression"). Zero values mean the defaults.
type Compression struct {
	// Off turns compression off where no rule turns it on (Rule.Compress).
	Off bool `yaml:"off"`
	// Types are the media types compressed: "type/subtype", or patterns with '*' ("text/*",
	// "application/*+json"). Empty: DefaultCompressTypes. Media (video, audio, images but
	// SVG) and anything the origin compressed already are never compressed.
	Types []string `yaml:"types"`
	// MinSize: smaller bodies go out as they are (default 1KiB; the coding's framing would
	// eat what it saves).
	MinSize Size `yaml:"min_size"`
	// BrotliLevel (1–11, default 4) and GzipLevel (1–9, default 4): past them a playlist
	// costs several times the CPU for a gain under 2% (BenchmarkCompressPlaylist). A coded
	// copy is made once per stored response and shared by every client, so a live playlist
	// is compressed once per version, not per request (figures: README "Compression").
	BrotliLevel int `yaml:"brotli_level"`
	GzipLevel   int `yaml:"gzip_level"`
	// LiveBrotliLevel and LiveGzipLevel (default 1) code short-lived responses — fresh for
	// less than a minute, as edge/live caps live playlists — which are coded again at every
	// new version, and which an LL-HLS blocking reload waits for.
	LiveBrotliLevel int `yaml:"live_brotli_level"`
	LiveGzipLevel   int `yaml:"live_gzip_level"`
}

// DefaultCompressTypes are the media types compressed when compression.types is empty: text,
// HLS playlists, DASH and Smooth Streaming manifests, subtitles (WebVTT, TTML), JSON, XML,
// JavaScript, SVG, WebAssembly and uncompressed fonts.
var DefaultCompressTypes = []string{
	"text/*",
	"application/vnd.apple.mpegurl", "application/x-mpegurl", "audio/mpegurl", "audio/x-mpegurl",
	"application/dash+xml", "application/vnd.ms-sstr+xml", "application/ttml+xml",
	"application/json", "application/*+json", "application/xml", "application/*+xml",
	"application/javascript", "application/x-javascript", "application/ecmascript",
	"image/svg+xml", "application/wasm", "font/ttf", "font/otf", "application/x-font-ttf",
}

const (
	defaultCompressMinSize = 1 << 10
	defaultBrotliLevel     = 4
	defaultGzipLevel       = 4
)

// withDefaults is c with its zero values replaced by the defaults.
func (c Compression) withDefaults() Compression {
	if len(c.Types) == 0 {
		c.Types = DefaultCompressTypes
	}
	if c.MinSize == 0 {
		c.MinSize = defaultCompressMinSize
	}
	if c.BrotliLevel == 0 {
		c.BrotliLevel = defaultBrotliLevel
	}
	if c.GzipLevel == 0 {
		c.GzipLevel = defaultGzipLevel
	}
	if c.LiveBrotliLevel == 0 {
		c.LiveBrotliLevel = 1
	}
	if c.LiveGzipLevel == 0 {
		c.LiveGzipLevel = 1
	}
	return c
}

func (c *Compression) check() error {
	switch {
	case c.MinSize < 0:
		return fmt.Errorf("compression.min_size must not be negative, got %d", c.MinSize)
	case c.BrotliLevel < 0 || c.BrotliLevel > 11:
		return fmt.Errorf("compression.brotli_level must be 1 to 11, got %d", c.BrotliLevel)
	case c.GzipLevel < 0 || c.GzipLevel > 9:
		return fmt.Errorf("compression.gzip_level must be 1 to 9, got %d", c.GzipLevel)
	case c.LiveBrotliLevel < 0 || c.LiveBrotliLevel > 11:
		return fmt.Errorf("compression.live_brotli_level must be 1 to 11, got %d", c.LiveBrotliLevel)
	case c.LiveGzipLevel < 0 || c.LiveGzipLevel > 9:
		return fmt.Errorf("compression.live_gzip_level must be 1 to 9, got %d", c.LiveGzipLevel)
	}
	for i, t := range c.Types {
		typ, sub, ok := strings.Cut(t, "/")
		if _, err := path.Match(t, ""); err != nil || !ok || typ == "" || sub == "" || strings.ContainsAny(t, " ;,") {
			return fmt.Errorf("compression.types[%d]: %q is not a media type or pattern (type/subtype, text/*, application/*+json)", i, t)
		}
	}
	return nil
}

// compressType reports whether the Content-Type ct is one of types (patterns as in
// Compression.Types).
func compressType(types []string, ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	for _, p := range types {
		if ok, _ := path.Match(strings.ToLower(p), mt); ok {
			return true
		}
	}
	return false
}
