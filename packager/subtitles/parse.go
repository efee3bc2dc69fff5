package subtitles

import (
	"path/filepath"
	"strings"
)

// Parse reads a text track, its format told by the file name's extension (.vtt/.webvtt,
// .srt, .ttml/.xml/.dfxp) or, failing that, by its first bytes.
func Parse(name string, data []byte) (*Track, error) {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".vtt", ".webvtt":
		return ParseVTT(name, data)
	case ".srt":
		return ParseSRT(name, data)
	case ".ttml", ".xml", ".dfxp", ".imsc":
		return ParseTTML(name, data)
	}
	head := strings.TrimLeft(strings.TrimPrefix(string(data[:min(len(data), 512)]), "\uFEFF"), " \t\r\n")
	switch {
	case strings.HasPrefix(head, "WEBVTT"):
		return ParseVTT(name, data)
	case strings.HasPrefix(head, "<"):
		return ParseTTML(name, data)
	}
	return ParseSRT(name, data)
}
