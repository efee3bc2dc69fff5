package rangecache

import (
	"bytes"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"mime"
	"mime/multipart"
	"strings"
	"testing"
)

// patternReader is a ReaderAt of size bytes whose byte at offset o is byte(o % 251).
type patternReader struct{ size int64 }

func (p patternReader) ReadAt(b []byte, off int64) (int, error) {
	if off >= p.size {
		return 0, io.EOF
	}
	n := int(min(int64(len(b)), p.size-off))
	for i := range n {
		b[i] = byte((off + int64(i)) % 251)
	}
	if n < len(b) {
		return n, io.EOF
	}
	return n, nil
}

func patternBytes(r Range) []byte {
	b := make([]byte, r.Length)
	for i := range b {
		b[i] = byte((r.Start + int64(i)) % 251)
	}
	return b
}

// readBack parses a multipart/byteranges body with mime/multipart and checks every part's
// headers and bytes (RFC 9110 §14.6).
func readBack(t *testing.T, body []byte, ctype, contentType string, size int64, ranges []Range, want func(Range) []byte) {
	t.Helper()
	mt, params, err := mime.ParseMediaType(ctype)
	if err != nil || mt != "multipart/byteranges" {
		t.Fatalf("Content-Type %q: %q, %v", ctype, mt, err)
	}
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	for i, r := range ranges {
		p, err := mr.NextPart()
		if err != nil {
			t.Fatalf("part %d: %v", i, err)
		}
		if got, want := p.Header.Get("Content-Range"), r.ContentRange(size); got != want {
			t.Errorf("part %d Content-Range %q, want %q", i, got, want)
		}
		if contentType == "" {
			if _, ok := p.Header["Content-Type"]; ok || len(p.Header) != 1 {
				t.Errorf("part %d header %v, want Content-Range only", i, p.Header)
			}
		} else if got := p.Header.Get("Content-Type"); got != contentType {
			t.Errorf("part %d Content-Type %q, want %q", i, got, contentType)
		}
		got, err := io.ReadAll(p)
		if err != nil {
			t.Fatalf("part %d body: %v", i, err)
		}
		if !bytes.Equal(got, want(r)) {
			t.Errorf("part %d (%s): %d bytes differ from the source", i, r.ContentRange(size), len(got))
		}
	}
	if p, err := mr.NextPart(); err != io.EOF {
		t.Fatalf("after %d parts: %v, %v; want io.EOF", len(ranges), p, err)
	}
}

func TestWriteMultipart(t *testing.T) {
	src := make([]byte, 10000)
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := range src {
		src[i] = byte(rnd.Uint32())
	}
	fromSrc := func(r Range) []byte { return src[r.Start : r.Start+r.Length] }
	tests := []struct {
		name, boundary, contentType string
		ranges                      []Range
	}{
		{"two ranges", RandomBoundary(), "video/mp4", []Range{{0, 100}, {9000, 1000}}},
		{"RFC 9110 §14.6 example boundary", "THIS_STRING_SEPARATES", "application/pdf", []Range{{500, 500}, {7000, 1000}}},
		{"one-byte parts", "b", "application/octet-stream", []Range{{0, 1}, {9, 1}, {99, 1}, {999, 1}, {9999, 1}}},
		{"no Content-Type", RandomBoundary(), "", []Range{{10, 10}, {30, 10}}},
		{"parameters in type", RandomBoundary(), `text/plain; charset="utf-8"`, []Range{{0, 5}, {20, 5}}},
		{"in given order", RandomBoundary(), "video/mp4", []Range{{5000, 10}, {0, 10}}},
		{"single part", RandomBoundary(), "video/mp4", []Range{{0, 10000}}},
		{"bchars boundary", "a'()+_,-./:=? b", "video/mp4", []Range{{1, 2}, {4, 8}}},
		{"70-char boundary", strings.Repeat("x", 70), "video/mp4", []Range{{1, 2}, {4, 8}}},
		{"parts larger than the copy buffer", RandomBoundary(), "video/mp4", []Range{{0, 4000}, {4001, 5999}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			size := int64(len(src))
			want, err := MultipartLength(tc.boundary, tc.contentType, size, tc.ranges)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if err := WriteMultipart(&buf, tc.boundary, tc.contentType, size, tc.ranges, bytes.NewReader(src)); err != nil {
				t.Fatal(err)
			}
			if int64(buf.Len()) != want {
				t.Errorf("wrote %d bytes, MultipartLength said %d", buf.Len(), want)
			}
			// RFC 9110 §14.6's layout: the body starts with the first delimiter and ends with the close.
			if !bytes.HasPrefix(buf.Bytes(), []byte("--"+tc.boundary+"\r\n")) || !bytes.HasSuffix(buf.Bytes(), []byte("\r\n--"+tc.boundary+"--\r\n")) {
				t.Errorf("body does not start with the delimiter or end with the close delimiter:\n%.200q", buf.Bytes())
			}
			readBack(t, buf.Bytes(), MultipartContentType(tc.boundary), tc.contentType, size, tc.ranges, fromSrc)
		})
	}
}

// TestMultipartLengthDigits checks the length arithmetic across digit-count boundaries of
// positions and of the complete length, on a large synthetic representation.
func TestMultipartLengthDigits(t *testing.T) {
	for _, size := range []int64{1, 9, 10, 11, 99, 100, 101, 9999, 10000, 10_000_000_000, math.MaxInt64} {
		var ranges []Range
		for _, r := range []Range{{0, 1}, {8, 3}, {9, 1}, {98, 3}, {99, 2}, {size - 2, 2}, {size - 1, 1}, {9_999_999_990, 20}} {
			if r.Start >= 0 && r.Length <= size-r.Start && r.Start < size {
				ranges = append(ranges, r)
			}
		}
		boundary := RandomBoundary()
		want, err := MultipartLength(boundary, "video/mp4", size, ranges)
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		var buf bytes.Buffer
		if err := WriteMultipart(&buf, boundary, "video/mp4", size, ranges, patternReader{size}); err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		if int64(buf.Len()) != want {
			t.Errorf("size %d: wrote %d bytes, MultipartLength said %d", size, buf.Len(), want)
		}
		readBack(t, buf.Bytes(), MultipartContentType(boundary), "video/mp4", size, ranges, patternBytes)
	}
}

// TestMultipartFromParse answers a multi-range request end to end: Parse, then the body.
func TestMultipartFromParse(t *testing.T) {
	const size = 5000
	res, err := Parse("bytes=4000-, 0-99, 50-149, -10", size, Options{})
	if err != nil || res.Kind != Satisfiable || len(res.Ranges) != 2 {
		t.Fatalf("Parse = %+v, %v", res, err)
	}
	boundary := RandomBoundary()
	var buf bytes.Buffer
	if err := WriteMultipart(&buf, boundary, "video/mp4", size, res.Ranges, patternReader{size}); err != nil {
		t.Fatal(err)
	}
	if n, _ := MultipartLength(boundary, "video/mp4", size, res.Ranges); n != int64(buf.Len()) {
		t.Errorf("MultipartLength %d, body %d bytes", n, buf.Len())
	}
	readBack(t, buf.Bytes(), MultipartContentType(boundary), "video/mp4", size, []Range{{0, 150}, {4000, 1000}}, patternBytes)
}

func TestMultipartErrors(t *testing.T) {
	const size = 1000
	ok := []Range{{0, 10}, {20, 10}}
	tests := []struct {
		name, boundary, contentType string
		ranges                      []Range
		err                         error
	}{
		{"empty boundary", "", "video/mp4", ok, ErrBoundary},
		{"71-char boundary", strings.Repeat("x", 71), "video/mp4", ok, ErrBoundary},
		{"boundary ending in space", "abc ", "video/mp4", ok, ErrBoundary},
		{"boundary with quote", `a"b`, "video/mp4", ok, ErrBoundary},
		{"boundary with CRLF", "a\r\nb", "video/mp4", ok, ErrBoundary},
		{"content type with CRLF", "b", "video/mp4\r\nX-Evil: 1", ok, ErrContentType},
		{"content type with NUL", "b", "video/mp4\x00", ok, ErrContentType},
		{"no ranges", "b", "video/mp4", nil, ErrRanges},
		{"empty range", "b", "video/mp4", []Range{{0, 10}, {20, 0}}, ErrRanges},
		{"negative length", "b", "video/mp4", []Range{{20, -1}}, ErrRanges},
		{"negative start", "b", "video/mp4", []Range{{-1, 5}}, ErrRanges},
		{"start at end", "b", "video/mp4", []Range{{size, 1}}, ErrRanges},
		{"past the end", "b", "video/mp4", []Range{{995, 6}}, ErrRanges},
		{"overflowing end", "b", "video/mp4", []Range{{1, math.MaxInt64}}, ErrRanges},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if n, err := MultipartLength(tc.boundary, tc.contentType, size, tc.ranges); !errors.Is(err, tc.err) || n != 0 {
				t.Errorf("MultipartLength = %d, %v; want 0, %v", n, err, tc.err)
			}
			var buf bytes.Buffer
			err := WriteMultipart(&buf, tc.boundary, tc.contentType, size, tc.ranges, patternReader{size})
			if !errors.Is(err, tc.err) || buf.Len() != 0 {
				t.Errorf("WriteMultipart = %v after %d bytes; want %v before writing anything", err, buf.Len(), tc.err)
			}
		})
	}
	// A body longer than int64 can count cannot have a Content-Length.
	huge := []Range{{0, math.MaxInt64}, {0, math.MaxInt64}}
	if _, err := MultipartLength("b", "", math.MaxInt64, huge); !errors.Is(err, ErrRanges) {
		t.Errorf("MultipartLength of an overflowing body: %v, want ErrRanges", err)
	}
}

type failWriter struct{ left int }

var errWrite = errors.New("write failed")

func (w *failWriter) Write(b []byte) (int, error) {
	if len(b) > w.left {
		n := w.left
		w.left = 0
		return n, errWrite
	}
	w.left -= len(b)
	return len(b), nil
}

func TestWriteMultipartFaults(t *testing.T) {
	const size = 1000
	ranges := []Range{{0, 100}, {500, 100}}
	// A source that ends early is an error, not a short part.
	err := WriteMultipart(io.Discard, "b", "video/mp4", size, ranges, patternReader{550})
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("short source: %v, want io.ErrUnexpectedEOF", err)
	}
	// A failing writer's error comes back, wherever it fails.
	total, _ := MultipartLength("b", "video/mp4", size, ranges)
	for _, at := range []int{0, 10, 80, 200, int(total) - 1} {
		err := WriteMultipart(&failWriter{left: at}, "b", "video/mp4", size, ranges, patternReader{size})
		if !errors.Is(err, errWrite) {
			t.Errorf("writer failing after %d bytes: %v, want %v", at, err, errWrite)
		}
	}
	if err := WriteMultipart(&failWriter{left: int(total)}, "b", "video/mp4", size, ranges, patternReader{size}); err != nil {
		t.Errorf("writer with exactly room for the body: %v", err)
	}
}

func TestRandomBoundary(t *testing.T) {
	a, b := RandomBoundary(), RandomBoundary()
	if a == b || len(a) != 32 || !validBoundary(a) {
		t.Errorf("RandomBoundary() = %q, %q: want two different valid 32-char boundaries", a, b)
	}
	if got := MultipartContentType("abc"); got != "multipart/byteranges; boundary=abc" {
		t.Errorf("MultipartContentType(abc) = %q", got)
	}
	if _, params, err := mime.ParseMediaType(MultipartContentType("a b:c")); err != nil || params["boundary"] != "a b:c" {
		t.Errorf("MultipartContentType(a b:c) = %q does not parse back: %v %v", MultipartContentType("a b:c"), params, err)
	}
}
