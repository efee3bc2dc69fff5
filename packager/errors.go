package packager

import (
	"errors"
	"fmt"
)

// InputError is a problem with one input file. Its message names the file first, so that the
// CLI can print it as the one line a user needs.
type InputError struct {
	File string
	Err  error
}

func (e *InputError) Error() string {
	var uc *UnsupportedCodecError
	if errors.As(e.Err, &uc) {
		return fmt.Sprintf("unsupported codec %s in %s", uc.Codec, e.File)
	}
	return e.File + ": " + e.Err.Error()
}

func (e *InputError) Unwrap() error { return e.Err }

// UnsupportedCodecError reports a sample entry Reel cannot package (anything but H.264, HEVC
// and AAC today).
type UnsupportedCodecError struct {
	Codec string
}

func (e *UnsupportedCodecError) Error() string { return "unsupported codec " + e.Codec }

// OutputError is a problem with the output folder.
type OutputError struct {
	Dir string
	Err error
}

func (e *OutputError) Error() string { return e.Dir + ": " + e.Err.Error() }
func (e *OutputError) Unwrap() error { return e.Err }

func inputErr(file string, err error) error {
	var ie *InputError
	if errors.As(err, &ie) {
		return err
	}
	return &InputError{File: file, Err: err}
}
