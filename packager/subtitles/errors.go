package subtitles

import "fmt"

// ParseError is a problem in an input file, at a line: its Error is the one line a user sees,
// "file.srt:12: timestamp "00:01:02,5x0": bad milliseconds".
type ParseError struct {
	File string
	Line int // 1-based; 0 when the problem is the file as a whole
	Msg  string
}

func (e *ParseError) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	}
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
}

func errAt(file string, line int, format string, a ...any) error {
	return &ParseError{File: file, Line: line, Msg: fmt.Sprintf(format, a...)}
}
