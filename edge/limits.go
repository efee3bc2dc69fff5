package edge

import "time"

// ClientLimits bound what clients can hold: their connections, the time they take to send a
// request body, and the origin connections their requests occupy (README "Hardening").
// They are part of Limits (same YAML section).
type ClientLimits struct {
	// MaxClientConns bounds the open client connections (HTTP/1.1 and HTTP/2 over TCP);
	// one more is closed as soon as it is accepted.
	MaxClientConns int `yaml:"max_client_conns"`
	// FirstRequestTimeout is how long a new connection may stay silent before its first
	// request; ClientIdleTimeout how long a keep-alive connection may wait between requests.
	FirstRequestTimeout time.Duration `yaml:"first_request_timeout"`
	ClientIdleTimeout   time.Duration `yaml:"client_idle_timeout"`
	// ClientWriteTimeout is how long a response may wait on a client that takes none of it
	// (a full socket buffer, a zero TCP window, no flow-control window for the stream): past
	// it the connection closes or the stream is reset (HTTP/1.1, HTTP/2, HTTP/3). A slow but
	// steady client gets its whole body, however long that takes.
	ClientWriteTimeout time.Duration `yaml:"client_write_timeout"`
	// ClientNotsentLowat is how many bytes of a response may wait unsent in a client
	// connection's socket (TCP_NOTSENT_LOWAT, Linux; 0 leaves the kernel's default, no
	// bound). Bounded, a large response goes out in turns of about this much as the client
	// takes it, so connections take turns fairly: without it the kernel lets one write fill
	// a send buffer autotuned up to 4 MiB, and the clients whose receive windows grew first
	// take whole responses per turn while the others wait (issue 19: a 4 MB hit's p99 ran
	// 0.2–1 s, against 0.12–0.14 s bounded). It bounds what is queued, not what is in
	// flight: a long fat path still gets the window it needs.
	ClientNotsentLowat Size `yaml:"client_notsent_lowat"`
	// RequestBodyIdleTimeout bounds each wait for request body bytes, RequestBodyTimeout the
	// whole body: past either the request gets 408 (HTTP/1.1 in edge/h1; HTTP/2 and HTTP/3
	// through the stream's read deadline, reqbody.go).
	RequestBodyIdleTimeout time.Duration `yaml:"request_body_idle_timeout"`
	RequestBodyTimeout     time.Duration `yaml:"request_body_timeout"`
	// MaxBufferedBody: request bodies up to this size are read whole before the origin is
	// contacted, so that a client trickling one holds no origin connection.
	MaxBufferedBody Size `yaml:"max_buffered_body"`
	// MaxUploadsPerOrigin bounds the larger bodies streamed to one origin at once; a request
	// beyond it waits up to UploadQueueWait (with at most MaxUploadsPerOrigin others), then
	// gets 503 with Retry-After.
	MaxUploadsPerOrigin int           `yaml:"max_uploads_per_origin"`
	UploadQueueWait     time.Duration `yaml:"upload_queue_wait"`
	// MaxConnsPerOrigin bounds the connections to one origin (per pool: ordinary requests,
	// and LL-HLS blocking reloads); a request that finds them all busy waits up to
	// OriginQueueWait for one, then gets 503 "origin connection queue timeout".
	MaxConnsPerOrigin int           `yaml:"max_conns_per_origin"`
	OriginQueueWait   time.Duration `yaml:"origin_queue_wait"`
}

func defaultClientLimits() ClientLimits {
	return ClientLimits{
		MaxClientConns:         10000,
		FirstRequestTimeout:    10 * time.Second,
		ClientIdleTimeout:      2 * time.Minute,
		ClientWriteTimeout:     30 * time.Second,
		ClientNotsentLowat:     128 << 10,
		RequestBodyIdleTimeout: 10 * time.Second,
		RequestBodyTimeout:     2 * time.Minute,
		MaxBufferedBody:        64 << 10,
		MaxUploadsPerOrigin:    64,
		UploadQueueWait:        5 * time.Second,
		MaxConnsPerOrigin:      256,
		OriginQueueWait:        10 * time.Second,
	}
}

// invalid names the first setting out of range, or is "".
func (l ClientLimits) invalid() string {
	switch {
	case l.MaxClientConns <= 0 || l.MaxUploadsPerOrigin <= 0 || l.MaxConnsPerOrigin <= 0:
		return "limits.max_client_conns, max_uploads_per_origin and max_conns_per_origin must be positive"
	case l.FirstRequestTimeout <= 0 || l.ClientIdleTimeout <= 0 || l.ClientWriteTimeout <= 0 || l.RequestBodyIdleTimeout <= 0 || l.RequestBodyTimeout <= 0:
		return "limits.first_request_timeout, client_idle_timeout, client_write_timeout, request_body_idle_timeout and request_body_timeout must be positive"
	case l.UploadQueueWait < 0 || l.OriginQueueWait <= 0:
		return "limits.upload_queue_wait must not be negative and origin_queue_wait must be positive"
	case l.MaxBufferedBody < 0:
		return "limits.max_buffered_body must not be negative"
	case l.ClientNotsentLowat < 0 || l.ClientNotsentLowat > 1<<30:
		return "limits.client_notsent_lowat must be between 0 (the kernel's default) and 1GiB"
	}
	return ""
}
