package edge

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
)

// A private S3-compatible bucket as an origin (Origin.S3), as CloudFront's origin access
// control: the bucket refuses anonymous requests, and the edge signs each of its own with
// AWS Signature Version 4 at the last moment before the wire (originTransport.RoundTrip), so
// that every field the edge set or forwarded — Range, the validators of a revalidation — is
// final and covered. What reaches the bucket is built here from an allow-list, never the
// client's request as it came:
//
//   - GET and HEAD only: anything else is answered 405 by the edge and never sent (writing to
//     the bucket through the edge is impossible, whatever the identity may do).
//   - No query: S3 gives parameters meaning (versionId, response-content-type, X-Amz-*…), so a
//     client could otherwise turn the edge's signed request into another one. The cache key
//     may still hold a query; the bucket never sees it.
//   - Fields: Range and the conditionals (If-Match, If-None-Match, If-Modified-Since,
//     If-Unmodified-Since), all signed; a Range with an If-Range is not sent (the whole object
//     answers it). The client's Authorization and X-Amz-* fields, and
//     everything else, are dropped: a client can neither borrow nor override the edge's identity.
//   - Host is the URL's host (it is signed): host_header does not apply.
//
// Answers: X-Amz-* response fields are removed; S3's XML errors are replaced by short ones of
// the edge's own (they hold request ids and the bucket's names). NoSuchKey → 404, and so is
// AccessDenied: the answer S3 gives for a missing key when the identity lacks s3:ListBucket
// (logged, as it is also the answer when it lacks s3:GetObject). A refused signature or
// identity, a wrong region, a missing bucket → 502, with the reason in the log.

// s3EmptyHash is the SHA-256 of an empty payload: GET and HEAD send none.
const s3EmptyHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// s3ErrorBodyLimit bounds the part of an S3 error body read for its code.
const s3ErrorBodyLimit = 16 << 10

// s3Forwarded are the request fields a signed S3 request carries from the client's.
var s3Forwarded = []string{"Range", "If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since"}

// s3Signer signs the requests of one S3 origin (or pool member).
type s3Signer struct {
	name   string // the origin, for logs
	region string
	creds  aws.CredentialsProvider // a cache: refreshes temporary credentials before they expire
	signer *v4.Signer
	log    *slog.Logger

	// Refusals are logged once per cause a minute, as TLS failures are (upstream.go).
	mu     sync.Mutex
	logged map[string]time.Time
}

// checkS3 refuses the settings an S3 origin can't honour.
func (o Origin) checkS3() error {
	if o.S3 == nil {
		return nil
	}
	switch {
	case o.HostHeader != "" && o.HostHeader != "origin":
		return fmt.Errorf("host_header %q: an s3 origin is always sent its URL's host (the signature covers it)", o.HostHeader)
	case o.HealthCheck != nil:
		return errors.New("health_check: not with s3 (the probes are not signed); the pool's passive checks (max_fails, fail_timeout) apply")
	}
	return nil
}

// s3CredentialsTimeout bounds the first look-up of credentials at start.
const s3CredentialsTimeout = 15 * time.Second

// newS3Signer loads the region and the credentials chain of o (an S3 origin) and checks that
// credentials can be had now: an edge that can't sign anything stops at start.
func newS3Signer(o Origin, name string, log *slog.Logger) (*s3Signer, error) {
	ctx, cancel := context.WithTimeout(context.Background(), s3CredentialsTimeout)
	defer cancel()
	var opts []func(*awsconfig.LoadOptions) error
	if o.S3.Region != "" {
		opts = append(opts, awsconfig.WithRegion(o.S3.Region))
	}
	if o.S3.Profile != "" {
		opts = append(opts, awsconfig.WithSharedConfigProfile(o.S3.Profile))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("s3: AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		return nil, errors.New("s3: no region: set s3.region (or AWS_REGION)")
	}
	if cfg.Credentials == nil {
		return nil, errors.New("s3: no AWS credentials found (AWS_ACCESS_KEY_ID, AWS_PROFILE, ~/.aws/credentials, an instance role)")
	}
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		return nil, fmt.Errorf("s3: no AWS credentials: %w", err)
	}
	return &s3Signer{name: name, region: cfg.Region, creds: cfg.Credentials, log: log,
		signer: v4.NewSigner(func(so *v4.SignerOptions) {
			so.DisableURIPathEscaping = true // S3 paths are escaped once (s3Path)
		}),
		logged: map[string]time.Time{}}, nil
}

// roundTrip sends r to the bucket by send as a signed S3 request, and makes the edge's
// answer of what the bucket said.
func (s *s3Signer) roundTrip(r *http.Request, send func(*http.Request) (*http.Response, error)) (*http.Response, error) {
	if r.Body != nil {
		r.Body.Close() // GET and HEAD have none worth sending; others are not sent
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		resp := s3Synth(r, http.StatusMethodNotAllowed, "method not allowed: the origin is a read-only S3 bucket")
		resp.Header.Set("Allow", "GET, HEAD")
		return resp, nil
	}
	out, err := s.request(r)
	if err != nil && r.Context().Err() != nil {
		return nil, err // the client left: nothing to say about the credentials
	}
	if err != nil {
		s.refused("credentials", "S3 origin: no credentials to sign with: answering 502", "err", err)
		return s3Synth(r, http.StatusBadGateway, "S3 origin: the edge has no credentials"), nil
	}
	resp, err := send(out)
	if err != nil {
		return nil, err
	}
	for k := range resp.Header {
		if strings.HasPrefix(k, "X-Amz-") {
			delete(resp.Header, k)
		}
	}
	if resp.StatusCode < 300 || resp.StatusCode == http.StatusNotModified {
		return resp, nil
	}
	return s.answerError(r, resp), nil
}

// request is the signed S3 request for r.
func (s *s3Signer) request(r *http.Request) (*http.Request, error) {
	ctx := r.Context()
	u := *r.URL
	u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = "", false, "", ""
	u.RawPath = s3Path(u.Path)
	out, err := http.NewRequestWithContext(ctx, r.Method, u.String(), nil)
	if err != nil {
		return nil, err
	}
	out.URL = &u // as built: String and parsing could re-choose the escaping
	out.Host = u.Host
	ifRange := len(r.Header.Values("If-Range")) > 0
	for _, k := range s3Forwarded {
		if k == "Range" && ifRange {
			// S3 documents no If-Range: sent Range alone, a changed object would answer a
			// part of its new bytes to a client holding the old ones. The whole object is
			// always a right answer (RFC 9110 §13.1.5).
			continue
		}
		if v := r.Header.Values(k); len(v) > 0 {
			out.Header[k] = append([]string(nil), v...)
		}
	}
	out.Header.Set("User-Agent", "reel-edge")
	out.Header.Set("X-Amz-Content-Sha256", s3EmptyHash)
	creds, err := s.creds.Retrieve(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.signer.SignHTTP(ctx, creds, out, s3EmptyHash, "s3", s.region, time.Now()); err != nil {
		return nil, err
	}
	return out, nil
}

// s3Path escapes a decoded path as S3's canonical URI does: every byte but the unreserved
// characters (RFC 3986 §2.3) and '/' as %XX. What goes on the wire is what was signed.
func s3Path(p string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~/", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

// answerError turns an S3 error (status 300 or more, not 304) into the edge's answer.
func (s *s3Signer) answerError(r *http.Request, resp *http.Response) *http.Response {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, s3ErrorBodyLimit))
	resp.Body.Close()
	code := s3ErrorCode(body)
	status, why := s3Verdict(resp.StatusCode, code)
	switch {
	case status == http.StatusBadGateway:
		s.refused(code, "S3 origin refused the edge's request: answering 502",
			"status", resp.StatusCode, "code", code, "reason", why, "path", r.URL.Path)
	case code == "AccessDenied":
		s.refused(code, "S3 origin answered AccessDenied: taken as a missing object (the identity has no s3:ListBucket); if every object is refused, it lacks s3:GetObject",
			"path", r.URL.Path)
	}
	out := s3Synth(r, status, why)
	if status == http.StatusRequestedRangeNotSatisfiable {
		if cr := resp.Header.Get("Content-Range"); cr != "" {
			out.Header.Set("Content-Range", cr)
		}
	}
	if status == resp.StatusCode && status >= 500 {
		if ra := resp.Header.Get("Retry-After"); ra != "" {
			out.Header.Set("Retry-After", ra)
		}
	}
	return out
}

// s3Verdict is the status and short reason the edge answers for an S3 error of status and
// code (the <Code> of its XML body, "" when it had none).
func s3Verdict(status int, code string) (int, string) {
	switch code {
	case "NoSuchKey", "AccessDenied":
		return http.StatusNotFound, "not found"
	case "NoSuchBucket":
		return http.StatusBadGateway, "S3 origin: the bucket does not exist"
	case "SignatureDoesNotMatch", "InvalidAccessKeyId", "ExpiredToken", "InvalidToken", "TokenRefreshRequired",
		"AuthorizationHeaderMalformed", "RequestTimeTooSkewed", "InvalidSecurity", "MissingSecurityHeader",
		"AccountProblem", "AllAccessDisabled", "InvalidObjectState":
		return http.StatusBadGateway, "S3 origin refused the edge's credentials or signature (" + code + ")"
	case "PermanentRedirect", "TemporaryRedirect", "IllegalLocationConstraintException":
		return http.StatusBadGateway, "S3 origin: the bucket is in another region or behind another endpoint (" + code + ")"
	}
	switch {
	case status == http.StatusNotFound:
		return http.StatusNotFound, "not found"
	case status == http.StatusPreconditionFailed:
		return status, "precondition failed"
	case status == http.StatusRequestedRangeNotSatisfiable:
		return status, "range not satisfiable"
	case status >= 500:
		// Kept: a pool retries it on another member, the cache may serve stale (RFC 5861).
		return status, "S3 origin error " + strconv.Itoa(status) + codeSuffix(code)
	}
	// Redirects, and refusals of other causes: the edge's configuration or the bucket's
	// policy is wrong, not the viewer's request.
	return http.StatusBadGateway, "S3 origin answered " + strconv.Itoa(status) + codeSuffix(code)
}

func codeSuffix(code string) string {
	if code == "" {
		return ""
	}
	return " (" + code + ")"
}

// s3ErrorCode is the Code of an S3 XML error body, or "".
func s3ErrorCode(body []byte) string {
	var e struct {
		Code string `xml:"Code"`
	}
	if xml.Unmarshal(body, &e) != nil {
		return ""
	}
	return e.Code
}

// s3Synth is a response of the edge's own in place of the bucket's.
func s3Synth(r *http.Request, status int, reason string) *http.Response {
	body := reason + "\n"
	h := http.Header{}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("X-Content-Type-Options", "nosniff")
	if status != http.StatusNotFound {
		h.Set("Cache-Control", "no-store") // the edge's trouble, not the object's state
	}
	if r.Method == http.MethodHead {
		body = ""
	}
	return &http.Response{
		Status: strconv.Itoa(status) + " " + http.StatusText(status), StatusCode: status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(reason) + 1),
		Request: r,
	}
}

// refused logs a refusal once per cause a minute.
func (s *s3Signer) refused(cause, msg string, args ...any) {
	now := time.Now()
	s.mu.Lock()
	last, seen := s.logged[cause]
	if !seen || now.Sub(last) >= time.Minute {
		s.logged[cause] = now
	}
	s.mu.Unlock()
	if seen && now.Sub(last) < time.Minute {
		return
	}
	level := slog.LevelError
	if cause == "AccessDenied" {
		level = slog.LevelWarn
	}
	s.log.Log(context.Background(), level, msg, append([]any{"origin", s.name}, args...)...)
}
