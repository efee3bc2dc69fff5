package rangecache

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
)

// Errors from MultipartLength and WriteMultipart.
var (
	ErrBoundary    = errors.New("rangecache: invalid multipart boundary")
	ErrContentType = errors.New("rangecache: invalid part Content-Type")
	ErrRanges      = errors.New("rangecache: invalid ranges for multipart body")
)

// RandomBoundary returns a fresh random boundary for a multipart/byteranges body: 32 hex
// digits, which cannot occur by chance in the parts.
func RandomBoundary() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}

// MultipartContentType returns the Content-Type field value of a multipart/byteranges reply with
// the given boundary (RFC 9110 §14.6), quoting the boundary when it needs it.
func MultipartContentType(boundary string) string {
	return mime.FormatMediaType("multipart/byteranges", map[string]string{"boundary": boundary})
}

// MultipartLength returns the exact length of the multipart/byteranges body that WriteMultipart
// writes for the same arguments, so a 206 reply can carry Content-Length (RFC 9110 §14.6).
// It fails as WriteMultipart does on an invalid boundary, content type or range.
func MultipartLength(boundary, contentType string, size int64, ranges []Range) (int64, error) {
	if err := checkMultipart(boundary, contentType, size, ranges); err != nil {
		return 0, err
	}
	n := int64(len(boundary) + 8) // closing delimiter: CRLF "--" boundary "--" CRLF
	partHeader := int64(len(boundary)) + 4 + int64(len("Content-Range: bytes -/\r\n\r\n")) + int64(digits(size))
	if contentType != "" {
		partHeader += int64(len("Content-Type: \r\n") + len(contentType))
	}
	for i, r := range ranges {
		part := partHeader + int64(digits(r.Start)+digits(r.Start+r.Length-1))
		if i > 0 {
			part += 2 // the CRLF before every delimiter but the first belongs to the delimiter
		}
		if r.Length > math.MaxInt64-n-part {
			return 0, fmt.Errorf("%w: body length overflows int64", ErrRanges)
		}
		n += part + r.Length
	}
	return n, nil
}

// WriteMultipart writes the multipart/byteranges body (RFC 9110 §14.6) for ranges of a
// representation of size bytes read from src: one part per range, in the order given, each with
// Content-Type (omitted when contentType is empty) and Content-Range. It writes exactly
// MultipartLength bytes on success. Ranges must each have Length > 0 and lie within [0, size);
// a src that ends early gives io.ErrUnexpectedEOF.
func WriteMultipart(w io.Writer, boundary, contentType string, size int64, ranges []Range, src io.ReaderAt) error {
	if err := checkMultipart(boundary, contentType, size, ranges); err != nil {
		return err
	}
	hdr := make([]byte, 0, 128+len(boundary)+len(contentType))
	var longest int64
	for _, r := range ranges {
		longest = max(longest, r.Length)
	}
	buf := make([]byte, min(32<<10, longest))
	for i, r := range ranges {
		hdr = hdr[:0]
		if i > 0 {
			hdr = append(hdr, "\r\n"...)
		}
		hdr = append(hdr, "--"...)
		hdr = append(hdr, boundary...)
		hdr = append(hdr, "\r\n"...)
		if contentType != "" {
			hdr = append(hdr, "Content-Type: "...)
			hdr = append(hdr, contentType...)
			hdr = append(hdr, "\r\n"...)
		}
		hdr = append(hdr, "Content-Range: "...)
		hdr = appendContentRange(hdr, r, size)
		hdr = append(hdr, "\r\n\r\n"...)
		if _, err := w.Write(hdr); err != nil {
			return err
		}
		n, err := io.CopyBuffer(w, io.NewSectionReader(src, r.Start, r.Length), buf)
		if err != nil {
			return err
		}
		if n != r.Length {
			return fmt.Errorf("rangecache: part %s: %w", r.ContentRange(size), io.ErrUnexpectedEOF)
		}
	}
	hdr = append(hdr[:0], "\r\n--"...)
	hdr = append(hdr, boundary...)
	hdr = append(hdr, "--\r\n"...)
	_, err := w.Write(hdr)
	return err
}

func checkMultipart(boundary, contentType string, size int64, ranges []Range) error {
	if !validBoundary(boundary) {
		return ErrBoundary
	}
	for i := 0; i < len(contentType); i++ {
		if c := contentType[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return ErrContentType
		}
	}
	if len(ranges) == 0 {
		return fmt.Errorf("%w: none", ErrRanges)
	}
	for _, r := range ranges {
		if r.Start < 0 || r.Length <= 0 || r.Start >= size || r.Length > size-r.Start {
			return fmt.Errorf("%w: {Start:%d Length:%d} in %d bytes", ErrRanges, r.Start, r.Length, size)
		}
	}
	return nil
}

// validBoundary reports whether b is a boundary allowed by RFC 2046 §5.1.1: 1 to 70 bchars, not
// ending in a space.
func validBoundary(b string) bool {
	if len(b) == 0 || len(b) > 70 || b[len(b)-1] == ' ' {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
			continue
		}
		switch c {
		case '\'', '(', ')', '+', '_', ',', '-', '.', '/', ':', '=', '?', ' ':
			continue
		}
		return false
	}
	return true
}

// digits returns the number of decimal digits of n ≥ 0.
func digits(n int64) int {
	d := 1
	for n >= 10 {
		n /= 10
		d++
	}
	return d
}
