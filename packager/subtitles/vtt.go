package subtitles

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ParseVTT reads a WebVTT file following the W3C WebVTT parser: tolerant where it is (any
// line ending, a BOM, header text after WEBVTT, unknown or invalid cue settings, NOTE blocks,
// STYLE and REGION blocks after the first cue ignored), strict where players are (the WEBVTT
// signature). Where the parser would silently drop a cue — a timing line it cannot read — or
// text outside any cue, we refuse the file instead: a packager must not lose a cue unnoticed.
func ParseVTT(name string, data []byte) (*Track, error) {
	lines := splitLines(data)
	if len(lines) == 0 || !isKeyword(lines[0], "WEBVTT") {
		first := ""
		if len(lines) > 0 {
			first = lines[0]
		}
		return nil, errAt(name, 1, "missing the WEBVTT signature (first line is %q)", clip(first))
	}
	t := &Track{}
	i := 1
	// The header's own lines (metadata such as X-TIMESTAMP-MAP) run to the first blank line,
	// or to a line with "-->": the parser reads that as the first cue's timing.
	for i < len(lines) && lines[i] != "" && !strings.Contains(lines[i], "-->") {
		i++
	}
	seenCue := false
	for i < len(lines) {
		if lines[i] == "" {
			i++
			continue
		}
		start := i
		// A block runs to a blank line, or to a line with "-->" that is not its timing line.
		arrow := -1
		for i < len(lines) && lines[i] != "" {
			if strings.Contains(lines[i], "-->") {
				if arrow < 0 && i-start <= 1 {
					arrow = i
				} else {
					break
				}
			}
			i++
		}
		block := lines[start:i]
		if arrow >= 0 {
			c, err := parseVTTCue(name, lines, start, arrow, i)
			if err != nil {
				return nil, err
			}
			t.Cues = append(t.Cues, c)
			seenCue = true
			continue
		}
		switch {
		case isKeyword(block[0], "NOTE"):
		case isKeyword(block[0], "STYLE") && strings.TrimSpace(block[0]) == "STYLE":
			if !seenCue && len(block) > 1 {
				t.Styles = append(t.Styles, strings.Join(block[1:], "\n"))
			}
		case isKeyword(block[0], "REGION") && strings.TrimSpace(block[0]) == "REGION":
			if !seenCue && len(block) > 1 {
				t.Regions = append(t.Regions, strings.Join(block[1:], "\n"))
			}
		default:
			return nil, errAt(name, start+1, "text outside a cue (no timing line with \"-->\"): %q", clip(block[0]))
		}
	}
	t.finish(name)
	return t, nil
}

// parseVTTCue reads the cue whose block is lines[start:end] with its timing at lines[arrow].
func parseVTTCue(name string, lines []string, start, arrow, end int) (Cue, error) {
	c := Cue{Line: arrow + 1}
	if arrow > start {
		c.ID = lines[start]
	}
	s, e, rest, err := parseTiming(lines[arrow], parseVTTTime)
	if err != nil {
		return c, errAt(name, arrow+1, "%v", err)
	}
	if e < s {
		return c, errAt(name, arrow+1, "cue ends (%s) before it starts (%s)", FormatTime(e), FormatTime(s))
	}
	c.Start, c.End = s, e
	c.Settings = parseSettings(rest)
	c.Text = strings.Join(lines[arrow+1:end], "\n")
	return c, nil
}

// parseTiming reads "start --> end rest" with the given timestamp reader.
func parseTiming(line string, ts func(string) (int64, string, error)) (int64, int64, string, error) {
	l := strings.TrimLeft(line, " \t")
	s, rest, err := ts(l)
	if err != nil {
		return 0, 0, "", err
	}
	rest = strings.TrimLeft(rest, " \t")
	if !strings.HasPrefix(rest, "-->") {
		return 0, 0, "", fmt.Errorf("timing %q: want \"-->\" after the start time", clip(line))
	}
	rest = strings.TrimLeft(rest[3:], " \t")
	e, rest, err := ts(rest)
	if err != nil {
		return 0, 0, "", err
	}
	if rest != "" && rest[0] != ' ' && rest[0] != '\t' {
		return 0, 0, "", fmt.Errorf("timing %q: junk after the end time", clip(line))
	}
	return s, e, strings.TrimSpace(rest), nil
}

// parseVTTTime reads a WebVTT timestamp at the start of s: [hh:]mm:ss.ttt, hours any number
// of digits, minutes and seconds two digits up to 59, exactly three digits of milliseconds.
func parseVTTTime(s string) (int64, string, error) {
	tok := s
	if i := strings.IndexAny(s, " \t-"); i >= 0 {
		tok = s[:i]
	}
	bad := func(what string) (int64, string, error) {
		return 0, "", fmt.Errorf("timestamp %q: %s", clip(tok), what)
	}
	fields := strings.Split(tok, ":")
	if len(fields) < 2 || len(fields) > 3 {
		return bad("want [hh:]mm:ss.ttt")
	}
	last := fields[len(fields)-1]
	secStr, msStr, ok := strings.Cut(last, ".")
	if !ok {
		return bad("want a dot and three digits of milliseconds")
	}
	var h int64
	if len(fields) == 3 {
		v, err := digits(fields[0], 1, 10)
		if err != nil {
			return bad("bad hours")
		}
		h = v
	}
	m, err := digits(fields[len(fields)-2], 2, 2)
	if err != nil || m > 59 {
		return bad("bad minutes")
	}
	sec, err := digits(secStr, 2, 2)
	if err != nil || sec > 59 {
		return bad("bad seconds")
	}
	ms, err := digits(msStr, 3, 3)
	if err != nil {
		return bad("bad milliseconds")
	}
	return ((h*60+m)*60+sec)*1000 + ms, s[len(tok):], nil
}

// digits parses s as minLen..maxLen ASCII digits.
func digits(s string, minLen, maxLen int) (int64, error) {
	if len(s) < minLen || len(s) > maxLen {
		return 0, fmt.Errorf("length")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("digit")
		}
	}
	return strconv.ParseInt(s, 10, 64)
}

// parseSettings reads WebVTT cue settings, keeping the valid ones (W3C WebVTT §6.3 "parse
// the WebVTT cue settings": an unknown name or an invalid value is ignored).
func parseSettings(s string) Settings {
	var st Settings
	for _, f := range strings.Fields(s) {
		k, v, ok := strings.Cut(f, ":")
		if !ok || k == "" || v == "" {
			continue
		}
		switch k {
		case "vertical":
			if v == "rl" || v == "lr" {
				st.Vertical = v
			}
		case "line":
			num, align, _ := strings.Cut(v, ",")
			if (isPercent(num) || isLineNumber(num)) && oneOf(align, "", "start", "center", "end") {
				st.Line = v
			}
		case "position":
			num, align, _ := strings.Cut(v, ",")
			if isPercent(num) && oneOf(align, "", "line-left", "center", "line-right") {
				st.Position = v
			}
		case "size":
			if isPercent(v) {
				st.Size = v
			}
		case "align":
			if oneOf(v, "start", "center", "end", "left", "right") {
				st.Align = v
			}
		case "region":
			if !strings.Contains(v, "-->") {
				st.Region = v
			}
		}
	}
	return st
}

func oneOf(v string, set ...string) bool { return slices.Contains(set, v) }

// isPercent: digits with an optional fraction, then "%", 0..100.
func isPercent(s string) bool {
	n, ok := strings.CutSuffix(s, "%")
	if !ok || n == "" || n[0] == '.' || n[len(n)-1] == '.' {
		return false
	}
	for i := 0; i < len(n); i++ {
		if (n[i] < '0' || n[i] > '9') && n[i] != '.' {
			return false
		}
	}
	f, err := strconv.ParseFloat(n, 64)
	return err == nil && f >= 0 && f <= 100
}

func isLineNumber(s string) bool {
	s = strings.TrimPrefix(s, "-")
	_, err := digits(s, 1, 9)
	return err == nil
}

// isKeyword: line is kw alone or kw followed by a space or a tab.
func isKeyword(line, kw string) bool {
	rest, ok := strings.CutPrefix(line, kw)
	return ok && (rest == "" || rest[0] == ' ' || rest[0] == '\t')
}

// splitLines decodes a text file the way WebVTT does: UTF-8 (invalid bytes and NUL become
// U+FFFD), a leading BOM dropped, CRLF, CR and LF all ending a line.
func splitLines(data []byte) []string {
	s := string(data)
	s = strings.TrimPrefix(s, "\uFEFF")
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// FormatTime renders ms as a WebVTT timestamp, hh:mm:ss.ttt.
func FormatTime(ms int64) string {
	neg := ""
	if ms < 0 {
		neg, ms = "-", -ms
	}
	return fmt.Sprintf("%s%02d:%02d:%02d.%03d", neg, ms/3600000, ms/60000%60, ms/1000%60, ms%1000)
}

// clip shortens what a message quotes from the input.
func clip(s string) string {
	if len(s) > 40 {
		s = s[:40]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
		return s + "…"
	}
	return s
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
