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
	// BrotliLevel (1–11, default 5) and GzipLevel (1–9, default 6). A coded copy is made once
	// per stored response and shared by every client, so a live playlist is compressed once
	// per version, not per request (figures: README "Compression").
	BrotliLevel int `yaml:"brotli_level"`
	GzipLevel   int `yaml:"gzip_level"`
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
	defaultBrotliLevel     = 5
	defaultGzipLevel       = 6
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
