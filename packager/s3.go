package packager

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// Presentations in S3-compatible object storage: `reel package -o s3://bucket/prefix` uploads
// one (s3publish.go) and `reel origin --dir s3://bucket/prefix` serves one (s3Store, below).
// Credentials, region and endpoint come from the standard AWS environment and files
// (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL(_S3), …),
// as every AWS tool reads them.

// Object metadata the upload writes beside each object, so that serving it from the bucket
// gives the same ETag and Last-Modified as serving the packaged folder from disk.
const (
	metaETag  = "reel-etag"  // the content ETag (etag.go)
	metaMtime = "reel-mtime" // the staged file's modification time, Unix nanoseconds
)

// S3Location is s3://Bucket/Prefix; Prefix has no leading or trailing slash and may be empty.
type S3Location struct {
	Bucket, Prefix string
}

func (l S3Location) String() string {
	if l.Prefix == "" {
		return "s3://" + l.Bucket
	}
	return "s3://" + l.Bucket + "/" + l.Prefix
}

// key is the object key of name (a slash-separated path) under the prefix.
func (l S3Location) key(name string) string {
	if l.Prefix == "" {
		return name
	}
	return l.Prefix + "/" + name
}

// ParseS3URL parses s3://bucket/prefix. ok is false for anything not starting with s3:// (a
// folder); err is set for an s3:// URL that is malformed.
func ParseS3URL(s string) (loc S3Location, ok bool, err error) {
	rest, ok := strings.CutPrefix(s, "s3://")
	if !ok {
		return S3Location{}, false, nil
	}
	bucket, prefix, _ := strings.Cut(rest, "/")
	if bucket == "" {
		return S3Location{}, true, errors.New("no bucket name")
	}
	prefix = strings.Trim(prefix, "/")
	for _, elem := range strings.Split(prefix, "/") {
		if prefix != "" && (elem == "" || elem == "." || elem == ".." || elem[0] == '.') {
			return S3Location{}, true, errors.New("bad prefix (an empty, dot or hidden path element)")
		}
	}
	if strings.ContainsAny(rest, "?#\\") {
		return S3Location{}, true, errors.New("the URL holds a query, fragment or backslash")
	}
	return S3Location{Bucket: bucket, Prefix: prefix}, true, nil
}

// S3Options tune the S3 client beyond the standard AWS environment. The zero value is ready.
type S3Options struct {
	// PathStyle addresses buckets as ENDPOINT/bucket/key instead of bucket.ENDPOINT/key. Nil
	// means: path style when a custom endpoint is set (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_S3 or
	// endpoint_url in the config file; what MinIO, SeaweedFS and Ceph want), unless
	// REEL_S3_PATH_STYLE is "false" ("true" forces it).
	PathStyle *bool
	// MaxAttempts bounds the tries of one request on transient errors (throttling, 5xx,
	// connection resets), with exponential backoff and jitter. Zero means 5.
	MaxAttempts int
	// HTTPClient replaces the SDK's (tests); nil keeps it.
	HTTPClient *http.Client
}

// newS3Client builds a client from the standard AWS configuration.
func newS3Client(ctx context.Context, opt *S3Options) (*s3.Client, error) {
	if opt == nil {
		opt = &S3Options{}
	}
	attempts := opt.MaxAttempts
	if attempts <= 0 {
		attempts = 5
	}
	loads := []func(*config.LoadOptions) error{
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) { o.MaxAttempts = attempts })
		}),
	}
	// The SDK now adds CRC checksums to every upload by default, in a form (aws-chunked
	// trailers) that several S3-compatible servers refuse; only when an operation needs one,
	// unless the environment says otherwise.
	if os.Getenv("AWS_REQUEST_CHECKSUM_CALCULATION") == "" {
		loads = append(loads, config.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired))
	}
	if os.Getenv("AWS_RESPONSE_CHECKSUM_VALIDATION") == "" {
		loads = append(loads, config.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired))
	}
	if opt.HTTPClient != nil {
		loads = append(loads, config.WithHTTPClient(opt.HTTPClient))
	}
	cfg, err := config.LoadDefaultConfig(ctx, loads...)
	if err != nil {
		return nil, fmt.Errorf("AWS configuration: %w", err)
	}
	pathStyle := opt.PathStyle
	if pathStyle == nil {
		switch strings.ToLower(os.Getenv("REEL_S3_PATH_STYLE")) {
		case "true", "1":
			pathStyle = aws.Bool(true)
		case "false", "0":
			pathStyle = aws.Bool(false)
		}
	}
	var noRegion bool
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		custom := o.BaseEndpoint != nil
		if pathStyle != nil {
			o.UsePathStyle = *pathStyle
		} else {
			o.UsePathStyle = custom
		}
		if o.Region == "" {
			if custom {
				o.Region = "us-east-1" // S3-compatible servers mostly ignore it, but SigV4 needs one
			} else {
				noRegion = true
			}
		}
	})
	if noRegion {
		return nil, errors.New("no AWS region: set AWS_REGION (or region in the AWS config file)")
	}
	return client, nil
}

// s3Error turns an SDK error into a short one: the service's code and message, or the
// transport's error, without the SDK's layers of operation names and request ids.
func s3Error(err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		msg := ae.ErrorMessage()
		if msg == "" || msg == ae.ErrorCode() {
			return fmt.Errorf("%s%w", ae.ErrorCode(), errMarker{err})
		}
		return fmt.Errorf("%s: %s%w", ae.ErrorCode(), msg, errMarker{err})
	}
	return err
}

// errMarker keeps the original error reachable by errors.Is/As without printing it again.
type errMarker struct{ err error }

func (e errMarker) Error() string { return "" }
func (e errMarker) Unwrap() error { return e.err }

// isNotFound reports a missing object or key (HEAD answers a bare 404, GET NoSuchKey).
func isNotFound(err error) bool {
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	if errors.As(err, &nsk) || errors.As(err, &nf) {
		return true
	}
	var re interface{ HTTPStatusCode() int }
	return errors.As(err, &re) && re.HTTPStatusCode() == http.StatusNotFound
}

// s3Store serves a presentation from a bucket prefix. A plain GET is one GET to the bucket; any
// other request a HEAD, which gives the size, times and ETag (from the metadata the upload
// wrote), then a GET only when the answer needs bytes, and only the range it needs.
type s3Store struct {
	client *s3.Client
	loc    S3Location

	mu     sync.Mutex
	closed bool
}

func newS3Store(loc S3Location, opt *S3Options) (*s3Store, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client, err := newS3Client(ctx, opt)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", loc, err)
	}
	// Fail at start, not on every request, when the bucket is missing or refuses us.
	if err := headBucket(ctx, client, loc); err != nil {
		return nil, err
	}
	return &s3Store{client: client, loc: loc}, nil
}

func (s *s3Store) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

func (s *s3Store) open(ctx context.Context, name string, whole bool) (object, error) {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return nil, os.ErrClosed
	}
	key := s.loc.key(name)
	fail := func(method string, err error) error {
		if isNotFound(err) {
			return fs.ErrNotExist
		}
		return &storageError{fmt.Errorf("%s s3://%s/%s: %w", method, s.loc.Bucket, key, s3Error(err))}
	}
	o := &s3Object{ctx: ctx, store: s, key: key}
	var meta map[string]string
	if whole {
		// One GET gives the metadata and the body.
		get, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.loc.Bucket, Key: &key})
		if err != nil {
			return nil, fail("GET", err)
		}
		o.s3etag, o.sz, o.mtime, meta = aws.ToString(get.ETag), aws.ToInt64(get.ContentLength), aws.ToTime(get.LastModified), get.Metadata
		o.body, o.bodyEnd = get.Body, o.sz
	} else {
		head, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.loc.Bucket, Key: &key})
		if err != nil {
			return nil, fail("HEAD", err)
		}
		o.s3etag, o.sz, o.mtime, meta = aws.ToString(head.ETag), aws.ToInt64(head.ContentLength), aws.ToTime(head.LastModified), head.Metadata
	}
	if v, err := strconv.ParseInt(meta[metaMtime], 10, 64); err == nil {
		o.mtime = time.Unix(0, v)
	}
	// Objects uploaded by another tool have no content ETag of ours: S3's own (an MD5 of the
	// bytes for a single-part upload) is content-derived too, if not the same string.
	o.tag = meta[metaETag]
	if o.tag == "" {
		o.tag = o.s3etag
	}
	o.end = o.sz
	return o, nil
}

// s3Object is one HEADed object; its reader GETs lazily.
type s3Object struct {
	ctx    context.Context // the request's: its end stops the GET
	store  *s3Store
	key    string
	s3etag string // S3's ETag, for If-Match on the GET: a replaced object fails, not mixes
	tag    string
	sz     int64
	mtime  time.Time

	start, end int64 // the window (windowed): the bytes an answer needs

	off     int64         // the reader's position
	body    io.ReadCloser // an open GET, positioned at bodyOff
	bodyOff int64
	bodyEnd int64 // the GET's last byte + 1
}

func (o *s3Object) size() int64                          { return o.sz }
func (o *s3Object) modTime() time.Time                   { return o.mtime }
func (o *s3Object) etag(context.Context) (string, error) { return o.tag, nil }
func (o *s3Object) content() io.ReadSeeker               { return o }
func (o *s3Object) window(start, end int64)              { o.start, o.end = start, end }

func (o *s3Object) close() error {
	if o.body != nil {
		err := o.body.Close()
		o.body = nil
		return err
	}
	return nil
}

func (o *s3Object) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += o.off
	case io.SeekEnd:
		offset += o.sz
	default:
		return 0, errors.New("s3 object: bad whence")
	}
	if offset < 0 {
		return 0, errors.New("s3 object: negative position")
	}
	o.off = offset
	return offset, nil
}

func (o *s3Object) Read(p []byte) (int, error) {
	if o.off >= o.sz {
		return 0, io.EOF
	}
	if o.body != nil && (o.bodyOff != o.off || o.bodyOff >= o.bodyEnd) {
		o.close()
	}
	if o.body == nil {
		// Up to the window's end when the position is inside it, else to the object's end.
		end := o.sz
		if o.off >= o.start && o.off < o.end {
			end = o.end
		}
		rng := fmt.Sprintf("bytes=%d-%d", o.off, end-1)
		out, err := o.store.client.GetObject(o.ctx, &s3.GetObjectInput{
			Bucket: &o.store.loc.Bucket, Key: &o.key, Range: &rng, IfMatch: &o.s3etag,
		})
		if err != nil {
			return 0, fmt.Errorf("GET s3://%s/%s: %w", o.store.loc.Bucket, o.key, s3Error(err))
		}
		o.body, o.bodyOff, o.bodyEnd = out.Body, o.off, end
	}
	n, err := o.body.Read(p[:min(int64(len(p)), o.bodyEnd-o.bodyOff)])
	o.off += int64(n)
	o.bodyOff += int64(n)
	if err == io.EOF {
		o.close()
		if o.bodyOff < o.bodyEnd {
			return n, fmt.Errorf("GET s3://%s/%s: %w", o.store.loc.Bucket, o.key, io.ErrUnexpectedEOF)
		}
		err = nil
	}
	return n, err
}
