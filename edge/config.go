package edge

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/reelvideo/reel/edge/cachestatus"
	"github.com/reelvideo/reel/edge/policy"
	"github.com/reelvideo/reel/edge/rules"
)

// Config is everything `reel edge` can be told. Flags cover the common settings; the YAML file
// (--config) adds what flags can't: virtual hosts, per-path rules, cache policy and limits.
// Defaults mean "honour the origin".
type Config struct {
	Listen string `yaml:"listen"`
	// Name is this node's name in the Cache-Status members and Via entries it adds (default
	// "reel"). Give each node of a tiered cluster its own (edge-1, shield-2…): a response's
	// Cache-Status then tells which edge and which shield handled it, hop by hop.
	Name string `yaml:"name"`
	// Admin is the admin API's own address ("" disables it). Its bearer token comes from
	// the REEL_ADMIN_TOKEN environment variable or AdminTokenFile; without either, a random
	// token is generated and printed at start.
	Admin          string `yaml:"admin"`
	AdminTokenFile string `yaml:"admin_token_file"`
	CacheDir       string `yaml:"cache_dir"`
	Memory         Size   `yaml:"memory"`
	Disk           Size   `yaml:"disk"`
	// MaxObjectSize bounds what one response may occupy in the cache; larger ones are
	// passed through.
	MaxObjectSize Size `yaml:"max_object_size"`
	// SliceSize is the size of the aligned slices that range requests of objects not stored
	// whole are fetched and stored in (0 disables slicing).
	SliceSize Size `yaml:"slice_size"`
	// SliceThreshold, when set, stores objects longer than it as slices even when a tier
	// could keep them whole: a large file that viewers seek through or abandon then costs the
	// cache only the parts they watched, and its parts are evicted one by one. 0 (the
	// default) slices only what no tier would keep whole, and ranges of objects not stored.
	SliceThreshold Size `yaml:"slice_threshold"`

	// AccessLog logs one line per request (method, path, status, cache, bytes, duration).
	AccessLog bool `yaml:"access_log"`
	// AccessLogFormat is text (a log/slog line, the default) or json (one JSON object per
	// line); AccessLogPath a file the lines are appended to, or "stdout" (default: the
	// edge's log on stderr). See accesslog.go.
	AccessLogFormat string `yaml:"access_log_format"`
	AccessLogPath   string `yaml:"access_log_path"`

	Origins []Origin `yaml:"origins"`
	Rules   []Rule   `yaml:"rules"`
	Cache   Policy   `yaml:"cache"`
	Limits  Limits   `yaml:"limits"`
	Live    Live     `yaml:"live"`

	// Parents are the shield tier between this edge and the origins (parents.go).
	Parents Parents `yaml:"parents"`

	// TLS, HTTP1 and HTTP2 are the client-facing protocols (protocols.go, served by frontend.go).
	TLS   TLS   `yaml:"tls"`
	HTTP1 HTTP1 `yaml:"http1"`
	HTTP2 HTTP2 `yaml:"http2"`

	// Tokens are signed URLs (tokencheck.go, edge/token): off unless keys are given.
	Tokens Tokens `yaml:"tokens"`

	// Cluster is who a purge made with cluster=1 reaches (cluster.go, purgefan.go).
	Cluster Cluster `yaml:"cluster"`

	// GeoIP is the country database of the rules' country checks (config_access.go).
	GeoIP GeoIP `yaml:"geoip"`
	// Compression is gzip and brotli for text responses (compress.go, config_compress.go);
	// rules turn it off or on per path (Rule.Compress).
	Compression Compression `yaml:"compression"`
}

// Live tunes the handling of live manifests (edge/live): HLS media playlists without
// EXT-X-ENDLIST and dynamic MPDs, recognised by Content-Type or extension and classified by
// parsing them. Zero values mean the defaults.
type Live struct {
	// Off makes manifests follow the normal rules, live or not.
	Off bool `yaml:"off"`
	// MaxTTLFraction caps a live manifest's freshness at this fraction of its target duration
	// (HLS EXT-X-TARGETDURATION; DASH minimumUpdatePeriod, else the longest segment), and an
	// LL-HLS playlist's at its part target, however long the origin says: default 0.5. HTTP
	// lifetimes are whole seconds, so the cap is rounded down, and never below 1 s.
	MaxTTLFraction float64 `yaml:"max_ttl_fraction"`
	// MaxStaleFraction caps how long past its lifetime a live manifest may be served stale
	// (stale-while-revalidate, stale-if-error — the origin's or the cache defaults — and a
	// client's max-stale), as a fraction of its target duration: default 1.
	MaxStaleFraction float64 `yaml:"max_stale_fraction"`
	// BlockingWait is how long an LL-HLS blocking playlist reload (_HLS_msn) may take at the
	// origin (rfc8216bis §6.2.5.2: up to three target durations): the origin first-byte
	// timeout and the wait of requests coalesced onto it are at least this. Default 35s.
	BlockingWait time.Duration `yaml:"blocking_wait"`
	// MaxManifestSize: larger manifests are not classified (and follow the normal rules).
	// Default 4MiB.
	MaxManifestSize Size         `yaml:"max_manifest_size"`
	Prefetch        LivePrefetch `yaml:"prefetch"`
}

// LivePrefetch tunes segment prefetch: when the edge stores a refreshed live manifest, the
// segments it newly lists in the renditions viewers watch (and an LL-HLS playlist's
// preload-hint part, while its viewers read parts) are fetched into the cache in the
// background, so that the first viewer of each already gets a hit (edge/live: prefetch.go, demand.go).
type LivePrefetch struct {
	Off bool `yaml:"off"`
	// Segments is how many, at most, of the segments a refresh adds to each watched list (the
	// media playlist, each DASH representation) are prefetched, the newest first: default 3.
	Segments int `yaml:"segments"`
	// Concurrency bounds the prefetches in flight; a segment that finds no free slot is not
	// prefetched: default 16.
	Concurrency int `yaml:"concurrency"`
	// Hold is how long, at most, a refreshed live manifest (without LL-HLS parts) waits for
	// its newly listed segments to be stored before it is served, so that whoever reads it can
	// get a hit (never longer than its target duration; 0: not held). The viewer that would
	// have fetched the segment after the playlist gets both about when it would have had them
	// anyway. DefaultConfig: 2s.
	Hold time.Duration `yaml:"hold"`
}

// live defaults (zero values in Live).
const (
	defaultLiveTTLFraction   = 0.5
	defaultLiveStaleFraction = 1.0
	defaultBlockingWait      = 35 * time.Second
	defaultMaxManifestSize   = 4 << 20
	defaultPrefetchSegments  = 3
	defaultPrefetchParallel  = 16
)

// withDefaults is l with its zero values replaced by the defaults.
func (l Live) withDefaults() Live {
	if l.MaxTTLFraction == 0 {
		l.MaxTTLFraction = defaultLiveTTLFraction
	}
	if l.MaxStaleFraction == 0 {
		l.MaxStaleFraction = defaultLiveStaleFraction
	}
	if l.BlockingWait == 0 {
		l.BlockingWait = defaultBlockingWait
	}
	if l.MaxManifestSize == 0 {
		l.MaxManifestSize = defaultMaxManifestSize
	}
	if l.Prefetch.Segments == 0 {
		l.Prefetch.Segments = defaultPrefetchSegments
	}
	if l.Prefetch.Concurrency == 0 {
		l.Prefetch.Concurrency = defaultPrefetchParallel
	}
	return l
}

// Origin is an upstream. A request goes to the origin its most specific matching rule names
// (Rule.Origin: by path), else to the one whose Host is the request's, else to the "*" one.
type Origin struct {
	// Name is how rules refer to the origin (`origin: vod`); unique when set.
	Name string `yaml:"name"`
	// Host chooses the origin for requests no rule sends elsewhere: an exact host, or "*" for
	// any. Unset means "*" for an origin without a name, and no host for a named one (it is
	// then reached through the rules that name it only).
	Host string `yaml:"host"`
	// URL: scheme, host and port, and an optional path prepended to every request's (as
	// CloudFront's origin path: url http://o:8080/media sends /vod/a.m3u8 as /media/vod/a.m3u8).
	URL string `yaml:"url"`
	// HostHeader is what the origin sees as Host: "" keeps the client's, "origin" uses the
	// origin URL's host, anything else is sent as is.
	HostHeader string `yaml:"host_header"`
	// URLs make the origin a pool (pool.go): each request goes to one healthy member, chosen
	// by weight, and a GET or HEAD that fails on one is retried on another. Instead of URL.
	URLs []PoolMember `yaml:"urls"`
	Pool `yaml:",inline"`
	// S3 makes the origin a private S3-compatible bucket (the bucket, and a key prefix, in
	// the URL's path or host): every origin request is signed with SigV4 (s3sign.go).
	S3 *S3Origin `yaml:"s3"`

	Connection `yaml:",inline"`
}

// S3Origin is how the edge signs its requests to a private bucket. Credentials come from the
// standard AWS chain: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN, the shared
// config and credentials files, web identity, the instance's role; refreshed before they expire.
type S3Origin struct {
	// Region signs the requests (eu-west-1); unset: the AWS chain's (AWS_REGION, the profile).
	Region string `yaml:"region"`
	// Profile is the shared config profile to take credentials from (default: AWS_PROFILE,
	// else "default").
	Profile string `yaml:"profile"`
}

// PoolMember is one URL of an origin pool: `- http://a:8080` or `- {url: …, weight: 3}`.
type PoolMember struct {
	URL string `yaml:"url"`
	// Weight is the member's share of requests relative to the others' (default 1).
	Weight int `yaml:"weight"`
}

// UnmarshalYAML takes a member as a bare URL or as a mapping.
func (m *PoolMember) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		m.URL = n.Value
		return nil
	}
	// Node.Decode forgets the file decoder's KnownFields: a misspelt key is refused here.
	for i := 0; n.Kind == yaml.MappingNode && i+1 < len(n.Content); i += 2 {
		if k := n.Content[i].Value; k != "url" && k != "weight" {
			return fmt.Errorf("line %d: field %s not found in an origin's urls (url, weight)", n.Content[i].Line, k)
		}
	}
	type plain PoolMember
	return n.Decode((*plain)(m))
}

// Pool is how an origin pool judges and uses its members (pool.go, health.go).
type Pool struct {
	// MaxFails consecutive failures (connect errors, resets, 5xx, first-byte timeouts) mark a
	// member down (default 3).
	MaxFails int `yaml:"max_fails"`
	// FailTimeout is how long a member marked down by failures rests before one request tries
	// it again (default 10s), when it has no active health check to bring it back.
	FailTimeout time.Duration `yaml:"fail_timeout"`
	// HealthCheck probes every member (optional): a failed probe takes it out, a passing one
	// brings it back.
	HealthCheck *HealthCheck `yaml:"health_check"`
	// RetryBudget bounds the retries on other members.
	RetryBudget RetryBudget `yaml:"retry_budget"`
}

// HealthCheck is an active probe: GET path on each member every interval; a 2xx within
// timeout passes.
type HealthCheck struct {
	Path     string        `yaml:"path"`
	Interval time.Duration `yaml:"interval"` // default 2s
	Timeout  time.Duration `yaml:"timeout"`  // default 1s
}

// RetryBudget: retries stay within Percent of the requests of the last 10 seconds, plus
// MinRetries in that window (as Finagle's RetryBudget and Envoy's retry_budget): a pool
// whose members all fail answers errors, not a multiple of its traffic in retries.
type RetryBudget struct {
	Percent    *int `yaml:"percent"`     // default 20
	MinRetries *int `yaml:"min_retries"` // default 3
}

// poolURLs are the origin's member URLs: URLs, or URL alone.
func (o Origin) poolURLs() []PoolMember {
	if len(o.URLs) > 0 {
		return o.URLs
	}
	return []PoolMember{{URL: o.URL, Weight: 1}}
}

// Describe is the origin's URL, or its pool's URLs joined by "|", for logs.
func (o Origin) Describe() string {
	if len(o.URLs) == 0 {
		return o.URL
	}
	s := make([]string, len(o.URLs))
	for i, m := range o.URLs {
		s[i] = m.URL
	}
	return strings.Join(s, "|")
}

// checkPool validates the pool settings and fills in their defaults.
func (o *Origin) checkPool() error {
	switch {
	case o.URL != "" && len(o.URLs) > 0:
		return errors.New("give url or urls, not both")
	case o.MaxFails < 0:
		return fmt.Errorf("max_fails %d: want 1 or more", o.MaxFails)
	case o.FailTimeout < 0:
		return fmt.Errorf("fail_timeout %s: want a positive duration", o.FailTimeout)
	}
	if len(o.URLs) == 0 {
		if o.Pool != (Pool{}) {
			return errors.New("max_fails, fail_timeout, health_check and retry_budget need urls (a pool)")
		}
		return nil
	}
	for j, m := range o.URLs {
		if m.Weight < 0 {
			return fmt.Errorf("urls[%d]: weight %d: want 1 or more", j, m.Weight)
		}
		for _, n := range o.URLs[:j] {
			if n.URL == m.URL {
				return fmt.Errorf("urls[%d]: %q listed twice", j, m.URL)
			}
		}
	}
	if o.MaxFails == 0 {
		o.MaxFails = 3
	}
	if o.FailTimeout == 0 {
		o.FailTimeout = 10 * time.Second
	}
	if b := o.RetryBudget; b.Percent != nil && (*b.Percent < 0 || *b.Percent > 100) {
		return fmt.Errorf("retry_budget.percent %d: want 0 to 100", *b.Percent)
	} else if b.MinRetries != nil && *b.MinRetries < 0 {
		return fmt.Errorf("retry_budget.min_retries %d: want 0 or more", *b.MinRetries)
	}
	if h := o.HealthCheck; h != nil {
		hc := *h // not the caller's: defaults are filled in on a copy
		switch {
		case !strings.HasPrefix(hc.Path, "/"):
			return fmt.Errorf("health_check.path %q: want a path starting with /", hc.Path)
		case hc.Interval < 0 || hc.Timeout < 0:
			return errors.New("health_check: interval and timeout must be positive")
		}
		if hc.Interval == 0 {
			hc.Interval = 2 * time.Second
		}
		if hc.Timeout == 0 {
			hc.Timeout = time.Second
		}
		o.HealthCheck = &hc
	}
	return nil
}

// Connection is how the edge connects to an upstream, an origin or the parents (upstream.go).
type Connection struct {
	// Protocol: auto (default: HTTP/2 by ALPN on https, HTTP/1.1 on http), http1, or http2 (h2
	// required on https; h2c with prior knowledge on http). The certificate is always
	// verified; there is no switch to turn that off (trust a self-signed upstream by giving
	// its certificate as ca_file).
	Protocol string `yaml:"protocol"`
	// CAFile is a PEM bundle of the CAs that vouch for the upstream, used instead of the
	// system roots (not added to them): a private origin trusts its own CA only.
	CAFile string `yaml:"ca_file"`
	// ServerName is the name sent in SNI and verified in the certificate when it is not the
	// URL's host (an upstream reached by IP address, say).
	ServerName string `yaml:"server_name"`
	// ClientCert and ClientKey (PEM files) authenticate the edge to the upstream (mutual TLS).
	ClientCert string `yaml:"client_cert"`
	ClientKey  string `yaml:"client_key"`
}

// Rule is a set of conditions — which requests it applies to (edge/rules: host, path prefix,
// path glob, extensions, method, header fields, cookies) — and settings, what to do with them.
// Every rule a request matches applies, and each setting comes from the most specific matching
// rule that sets it (resolve.go): a rule for /vod/live/ setting a ttl keeps the origin, the
// key settings and the token rule of the one for /vod/. A rule with no condition matches every
// request.
type Rule struct {
	// PathPrefix is the path condition: the path starts with it ("/vod" also matches
	// "/vodka/x": end it with '/' for a folder). Also written match.path_prefix.
	PathPrefix string `yaml:"path_prefix"`
	// Match holds the other conditions.
	Match RuleMatch `yaml:"match"`

	// Origin names the origin (Origin.Name) of the requests the rule matches, whatever their
	// Host; where no matching rule names one, the Host chooses (route.go).
	Origin string `yaml:"origin"`
	// StripPrefix (with Origin) sends the origin the path without PathPrefix, as nginx's
	// proxy_pass with a URI does: /vod/a/b.m3u8 under path_prefix /vod/ is asked for as
	// /a/b.m3u8 (after the origin URL's own path, if any). It goes with the origin to the
	// more specific rules that inherit it. The cache key, the shield tier and relative URIs in
	// manifests keep the client's path; a manifest's absolute-path URIs (/a/…) would escape the
	// prefix, so the origin must write relative ones (reel origin and reel live do).
	StripPrefix bool `yaml:"strip_prefix"`
	// TTL overrides the origin's freshness lifetime for storable responses.
	TTL time.Duration `yaml:"ttl"`
	// Bypass sends matching requests to the origin without caching (false undoes a less
	// specific rule's true).
	Bypass *bool `yaml:"bypass"`
	// The cache key (edge/cachekey): query parameters in or out, request header fields added.
	// An empty list set here ([]) undoes a less specific rule's.
	IncludeParams []string `yaml:"include_params"`
	ExcludeParams []string `yaml:"exclude_params"`
	KeyHeaders    []string `yaml:"key_headers"`
	IgnoreQuery   *bool    `yaml:"ignore_query"`
	// ForwardIgnoredParams sends the origin the query parameters the key leaves out
	// (drop_params, exclude_params, outside include_params, ignore_query). Off by default: an
	// origin that reflects one would poison the entry every client of the key gets.
	ForwardIgnoredParams *bool `yaml:"forward_ignored_params"`
	// KeyCookies is a cookie allow-list (names or globs): those cookies are keyed, and the
	// origin is sent those alone (keyview.go). KeyDeviceClass keys the device class of the
	// User-Agent (mobile, tablet, desktop) instead of the User-Agent: the origin gets the
	// class (Reel-Device-Class) and a fixed User-Agent per class (README "Cache key").
	KeyCookies     []string `yaml:"key_cookies"`
	KeyDeviceClass *bool    `yaml:"key_device_class"`
	// Parent chooses between the parents (true) and the origin (false) when parents are
	// configured; everything goes through the parents when no rule says otherwise. Typical:
	// segments and large files through the shield, small API calls straight to the origin.
	Parent *bool `yaml:"parent"`
	// Token says whether requests need a signed-URL token: "required" or "off"; where no
	// matching rule says, tokens.require does.
	Token string `yaml:"token"`
	// Compress says whether text responses are compressed for clients that accept it
	// (compress.go); where no matching rule says, compression.off decides.
	Compress *bool `yaml:"compress"`
	// ClientCacheControl is what a client's own caching directives do for these paths:
	// "ignore" or "honor" (clientcc.go); where no matching rule says, cache.client_cache_control.
	// It never changes what is stored, so any rule may set it.
	ClientCacheControl string `yaml:"client_cache_control"`
	// ClientPreconditions is what a GET's or HEAD's If-Match and If-Unmodified-Since do for
	// these paths: "ignore" or "forward" (clientcc.go); where no matching rule says,
	// cache.client_preconditions. Like ClientCacheControl, any rule may set it.
	ClientPreconditions string `yaml:"client_preconditions"`

	// RuleTTLs: lifetimes when the origin is silent, clamps on the origin's, and what clients
	// are told (config_ttl.go; README "Cache policy").
	RuleTTLs `yaml:",inline"`
	// RuleAccess: referer, address, country and rate checks (config_access.go; README
	// "Access rules").
	RuleAccess `yaml:",inline"`
	// RuleHeaders: request_headers and response_headers, fields set, added or removed to the
	// origin and to clients, field by field from the most specific rule naming each
	// (config_headers.go; README "Header rules").
	RuleHeaders `yaml:",inline"`
}

// RuleMatch is a rule's conditions beyond its path prefix (edge/rules says how each matches).
// Methods, headers and cookies are request conditions: the cache key holds none of them, so a
// rule that has them may only set what leaves the stored response alone (bypass, token,
// browser_ttl, client_cache_control, the access settings, response_headers, and origin and
// request_headers together with bypass) —
// or one client's request could choose what every client of the key gets.
type RuleMatch struct {
	Host       string            `yaml:"host"`
	Hosts      []string          `yaml:"hosts"`
	PathPrefix string            `yaml:"path_prefix"`
	PathGlob   string            `yaml:"path_glob"`
	Extensions []string          `yaml:"extensions"`
	Methods    []string          `yaml:"methods"`
	Headers    map[string]string `yaml:"headers"`
	Cookies    map[string]string `yaml:"cookies"`
}

// prefix is the rule's path prefix, however written.
func (r *Rule) prefix() string { return cmp.Or(r.PathPrefix, r.Match.PathPrefix) }

// conditions are the rule's conditions for edge/rules.
func (r *Rule) conditions() rules.Match {
	m := r.Match
	hosts := m.Hosts
	if m.Host != "" {
		hosts = append([]string{m.Host}, hosts...)
	}
	return rules.Match{Hosts: hosts, PathPrefix: r.prefix(), PathGlob: m.PathGlob, Extensions: m.Extensions,
		Methods: m.Methods, Headers: m.Headers, Cookies: m.Cookies}
}

// shapesStored names the first setting of r that changes what is stored or how it is keyed
// ("" for none): a rule with request conditions must not set one.
func (r *Rule) shapesStored() string {
	bypass := r.Bypass != nil && *r.Bypass
	for _, s := range []struct {
		key string
		set bool
	}{
		{"origin", r.Origin != "" && !bypass}, {"strip_prefix", r.StripPrefix && !bypass}, {"ttl", r.TTL != 0},
		{"include_params", r.IncludeParams != nil}, {"exclude_params", r.ExcludeParams != nil},
		{"key_headers", r.KeyHeaders != nil}, {"ignore_query", r.IgnoreQuery != nil},
		{"forward_ignored_params", r.ForwardIgnoredParams != nil}, {"parent", r.Parent != nil},
		{"key_cookies", r.KeyCookies != nil}, {"key_device_class", r.KeyDeviceClass != nil},
		{"default_ttl", r.DefaultTTL != nil}, {"min_ttl", r.MinTTL != 0}, {"max_ttl", r.MaxTTL != 0},
		{"max_negative_ttl", r.MaxNegativeTTL != nil}, {"compress", r.Compress != nil},
		// What the origin is sent shapes what it answers (config_headers.go).
		{"request_headers", r.RequestHeaders != nil && !bypass},
	} {
		if s.set {
			return s.key
		}
	}
	return ""
}

// Parents is the shield tier: cache misses go to one of these caches (reel edges, or any HTTP
// cache) instead of the origin. Each object has one owner among them, chosen by rendezvous
// hashing of its cache key, so that every edge sends a given object to the same parent, whose
// own coalescing then turns all the edges' misses into one origin fetch; adding a parent moves
// only the keys it now owns (about 1/N). A parent that fails a connection or a health check is
// passed over (its keys fall to their next owner) until a health check succeeds again.
type Parents struct {
	URLs []string `yaml:"urls"`
	// DNS names more parents, asked again every Refresh (default 30s) while the edge runs, a
	// failed lookup keeping the last answer (parents.go, dnsmembers.go):
	// "_http._tcp.reel-shield.ns.svc.cluster.local" (SRV: each target and port) or
	// "reel-shield.ns.svc.cluster.local:8081" (A/AAAA: each address, that port). DNSServer
	// (host:port) is asked instead of the system resolver; Scheme is the parents' (http or
	// https, default http).
	DNS       string        `yaml:"dns"`
	DNSServer string        `yaml:"dns_server"`
	Scheme    string        `yaml:"scheme"`
	Refresh   time.Duration `yaml:"refresh"`
	// HealthPath is probed with GET on each parent every HealthInterval; 2xx is healthy
	// (default /_reel/health, which every reel edge answers).
	HealthPath     string        `yaml:"health_path"`
	HealthInterval time.Duration `yaml:"health_interval"`
	// Connection: how the edge connects to the parents (TLS trust, protocol), as for origins.
	Connection `yaml:",inline"`
	// DirectFallback sends requests to the origin when no parent is healthy (default true):
	// the origin's offload degrades rather than viewers failing. Turn it off for origins that
	// only accept the shield tier.
	DirectFallback bool `yaml:"direct_fallback"`
}

// Policy tunes RFC 9111 behaviour where the RFCs leave choices to the cache.
type Policy struct {
	DropParams           []string      `yaml:"drop_params"`
	HeuristicFraction    float64       `yaml:"heuristic_fraction"`
	HeuristicMax         time.Duration `yaml:"heuristic_max"`
	StaleWhileRevalidate time.Duration `yaml:"stale_while_revalidate"`
	StaleIfError         time.Duration `yaml:"stale_if_error"`
	// DefaultTTL and MaxNegativeTTL are the defaults of the rules' settings of the same
	// names (config_ttl.go); ErrorTTL is DefaultTTL's old name for 4xx entries, folded into
	// it by Validate.
	DefaultTTL     map[int]time.Duration `yaml:"default_ttl"`
	MaxNegativeTTL time.Duration         `yaml:"max_negative_ttl"`
	ErrorTTL       map[int]time.Duration `yaml:"error_ttl"`
	// MaxErrorTTL caps what an origin's explicit freshness gives a temporary error (5xx, 408,
	// 429).
	MaxErrorTTL    time.Duration `yaml:"max_error_ttl"`
	StripSetCookie bool          `yaml:"strip_set_cookie"`
	MaxVariants    int           `yaml:"max_variants"`
	// UnderscoresInHeaders forwards request fields whose names hold '_' (dropped by default,
	// upstream_request.go).
	UnderscoresInHeaders bool `yaml:"underscores_in_headers"`
	// HeuristicWithCredentials lets a response to a request with Cookie or Authorization be
	// stored on heuristic freshness (refused by default: policy.Options).
	HeuristicWithCredentials bool `yaml:"heuristic_with_credentials"`
	// ClientCacheControl is what a request's Cache-Control and Pragma do: "ignore" (the
	// default: neither sends a request to the origin nor keeps a response from being stored)
	// or "honor" (RFC 9111 §5.2.1), clientcc.go.
	ClientCacheControl string `yaml:"client_cache_control"`
	// ClientPreconditions is what a GET's or HEAD's If-Match and If-Unmodified-Since do:
	// "ignore" (the default: the cache answers as if they were absent, RFC 9110 §13.1.1,
	// §13.1.4) or "forward" (the request goes to the origin as it is), clientcc.go.
	ClientPreconditions string `yaml:"client_preconditions"`
}

// Limits protect the edge and the origin.
type Limits struct {
	MaxHeaderBytes         Size          `yaml:"max_header_bytes"`
	OriginConnectTimeout   time.Duration `yaml:"origin_connect_timeout"`
	OriginFirstByteTimeout time.Duration `yaml:"origin_first_byte_timeout"`
	OriginIdleTimeout      time.Duration `yaml:"origin_idle_timeout"`
	// OriginReadTimeout aborts an origin body that sends nothing for this long.
	OriginReadTimeout time.Duration `yaml:"origin_read_timeout"`
	// CoalesceWait bounds how long a request waits for another request's origin fetch before
	// going to the origin itself.
	CoalesceWait          time.Duration `yaml:"coalesce_wait"`
	MaxIdleConnsPerOrigin int           `yaml:"max_idle_conns_per_origin"`

	// ErrorHold keeps an origin's server error (5xx or 429) as the
	// answer for its key this long after it arrived: requests meanwhile share it instead of
	// each going to a failing origin (0 turns it off).
	ErrorHold time.Duration `yaml:"error_hold"`
	// AbandonedFillBytes is how much more a fill may take from the origin once no request
	// reads it any more (every client that asked went away): it then stops, and what
	// arrived is not stored whole. A client's disconnect never stops a fill others read.
	AbandonedFillBytes Size `yaml:"abandoned_fill_bytes"`
	ClientLimits       `yaml:",inline"`
}

// DefaultConfig is the configuration before flags and file.
func DefaultConfig() Config {
	return Config{
		Listen:        "127.0.0.1:8081",
		Admin:         "127.0.0.1:9091",
		Name:          "reel",
		Memory:        512 << 20,
		Disk:          10 << 30,
		MaxObjectSize: 1 << 30,
		SliceSize:     1 << 20,
		Cache: Policy{
			DropParams:          []string{"utm_*", "gclid", "fbclid", "msclkid"},
			HeuristicFraction:   0.1,
			HeuristicMax:        24 * time.Hour,
			MaxErrorTTL:         10 * time.Second,
			MaxNegativeTTL:      policy.DefaultMaxNegativeTTL,
			MaxVariants:         16,
			ClientCacheControl:  clientCCIgnore,
			ClientPreconditions: clientPreIgnore,
		},
		Limits: Limits{
			MaxHeaderBytes:         64 << 10,
			OriginConnectTimeout:   5 * time.Second,
			OriginFirstByteTimeout: 30 * time.Second,
			OriginIdleTimeout:      90 * time.Second,
			OriginReadTimeout:      30 * time.Second,
			CoalesceWait:           10 * time.Second,
			MaxIdleConnsPerOrigin:  256,
			ErrorHold:              time.Second,
			AbandonedFillBytes:     4 << 20,
			ClientLimits:           defaultClientLimits(),
		},
		Parents: Parents{HealthPath: HealthPath, HealthInterval: 2 * time.Second, DirectFallback: true},
		Live: Live{
			MaxTTLFraction:   defaultLiveTTLFraction,
			MaxStaleFraction: defaultLiveStaleFraction,
			BlockingWait:     defaultBlockingWait,
			MaxManifestSize:  defaultMaxManifestSize,
			Prefetch: LivePrefetch{
				Segments:    defaultPrefetchSegments,
				Concurrency: defaultPrefetchParallel,
				Hold:        2 * time.Second,
			},
		},
	}
}

// minDisk is the smallest disk tier: its folder's own structures take about 3 MiB of it.
const minDisk = 8 << 20

// LoadConfig reads a YAML file over the defaults. Unknown keys are errors: a typo must not
// silently change caching.
func LoadConfig(file string) (Config, error) {
	cfg := DefaultConfig()
	data, err := os.ReadFile(file)
	if err != nil {
		return cfg, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	// An empty file (io.EOF) means all defaults.
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return cfg, fmt.Errorf("%s: %w", file, err)
	}
	if err := cfg.checkRoutes(); err != nil {
		return cfg, fmt.Errorf("%s: %w", file, err)
	}
	if err := cfg.checkPools(); err != nil {
		return cfg, fmt.Errorf("%s: %w", file, err)
	}
	return cfg, nil
}

// checkPools checks the origins' pool settings (and fills in their defaults).
func (c *Config) checkPools() error {
	for i := range c.Origins {
		if err := c.Origins[i].checkPool(); err != nil {
			return fmt.Errorf("origins[%d]: %w", i, err)
		}
	}
	return nil
}

// Validate checks the configuration and reports the first problem in terms of the setting.
func (c *Config) Validate() error {
	if len(c.Origins) == 0 {
		return errors.New("no origin: give --origin URL or origins in the config file")
	}
	if err := c.checkRoutes(); err != nil {
		return err
	}
	if err := c.checkPools(); err != nil {
		return err
	}
	if err := c.Compression.check(); err != nil {
		return err
	}
	if err := c.checkAccessLog(); err != nil {
		return err
	}
	seen := map[string]bool{}
	for i, o := range c.Origins {
		for _, m := range o.poolURLs() {
			u, err := url.Parse(m.URL)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
				return fmt.Errorf("origins[%d]: url %q is not an http(s) URL without a query", i, m.URL)
			}
			if err := o.checkUpstream(u); err != nil {
				return fmt.Errorf("origins[%d]: %w", i, err)
			}
		}
		h := strings.TrimSuffix(strings.ToLower(o.Host), ".")
		if h == "" && o.Name == "" {
			h = "*"
		}
		if h != "" && seen[h] {
			return fmt.Errorf("origins[%d]: host %q listed twice", i, h)
		}
		if h != "" {
			seen[h] = true
		}
		c.Origins[i].Host = h
	}
	if c.Name == "" {
		c.Name = "reel"
	}
	// The name is a Cache-Status member's Token (RFC 8941 §3.3.4) and a Via pseudonym (an
	// RFC 9110 token): both hold without ':' and '/'.
	if !cachestatus.IsToken(c.Name) || strings.ContainsAny(c.Name, ":/") {
		return fmt.Errorf("name %q must start with a letter and hold no spaces, commas, ':' or '/'", c.Name)
	}
	for i, p := range c.Parents.URLs {
		u, err := url.Parse(p)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			return fmt.Errorf("parents.urls[%d]: %q is not an http(s) URL without a path", i, p)
		}
		if slices.Contains(c.Parents.URLs[:i], p) {
			return fmt.Errorf("parents.urls[%d]: %q listed twice", i, p)
		}
		if err := (Origin{URL: p, Connection: c.Parents.Connection}).checkUpstream(u); err != nil {
			return fmt.Errorf("parents: %w", err)
		}
	}
	if err := c.Parents.validateDNS(); err != nil {
		return err
	}
	if c.Parents.enabled() {
		if c.Parents.HealthInterval <= 0 {
			return errors.New("parents.health_interval must be positive")
		}
		if !strings.HasPrefix(c.Parents.HealthPath, "/") {
			return fmt.Errorf("parents.health_path %q must be an absolute path", c.Parents.HealthPath)
		}
	}
	switch {
	case c.Memory <= 0:
		return errors.New("memory must be positive")
	case c.SliceSize != 0 && c.SliceSize < 64<<10:
		return errors.New("slice_size must be at least 64KiB (or 0 to disable slicing)")
	case c.SliceThreshold < 0:
		return errors.New("slice_threshold must not be negative")
	case c.SliceThreshold != 0 && c.SliceSize == 0:
		return errors.New("slice_threshold needs slicing (slice_size is 0)")
	case c.SliceThreshold != 0 && c.SliceThreshold < c.SliceSize:
		return errors.New("slice_threshold must be at least slice_size (or 0: slice only what can't be stored whole)")
	case c.CacheDir != "" && c.Disk < minDisk:
		// The capacity counts the whole folder: badger's files and the room they may grow
		// into, and the folders, take about 3 MiB before any body (edge/store/diskspace.go).
		return errors.New("disk must be at least 8MiB when cache_dir is set")
	case c.Cache.HeuristicFraction < 0 || c.Cache.HeuristicFraction > 1:
		return errors.New("cache.heuristic_fraction must be between 0 and 1")
	case c.Limits.CoalesceWait <= 0:
		return errors.New("limits.coalesce_wait must be positive")
	case c.Limits.OriginReadTimeout <= 0:
		return errors.New("limits.origin_read_timeout must be positive")
	case c.Limits.ErrorHold < 0:
		return errors.New("limits.error_hold must not be negative")
	case c.Limits.AbandonedFillBytes < 0:
		return errors.New("limits.abandoned_fill_bytes must not be negative")
	case c.Limits.ClientLimits.invalid() != "":
		return errors.New(c.Limits.ClientLimits.invalid())
	case c.Admin != "" && c.Admin == c.Listen:
		return errors.New("admin must listen on its own address")
	case c.Live.MaxTTLFraction < 0 || c.Live.MaxTTLFraction > 1 || math.IsNaN(c.Live.MaxTTLFraction):
		return errors.New("live.max_ttl_fraction must be between 0 and 1")
	case c.Live.MaxStaleFraction < 0 || c.Live.MaxStaleFraction > 1 || math.IsNaN(c.Live.MaxStaleFraction):
		return errors.New("live.max_stale_fraction must be between 0 and 1")
	case c.Live.BlockingWait < 0 || c.Live.Prefetch.Hold < 0:
		return errors.New("live.blocking_wait and live.prefetch.hold must not be negative")
	case c.Live.MaxManifestSize < 0:
		return errors.New("live.max_manifest_size must not be negative")
	case c.Live.Prefetch.Segments < 0 || c.Live.Prefetch.Concurrency < 0:
		return errors.New("live.prefetch.segments and live.prefetch.concurrency must not be negative")
	}
	if err := c.Cache.checkTTLs(); err != nil {
		return err
	}
	if err := c.Cluster.validate(); err != nil {
		return err
	}
	if err := c.checkAccess(); err != nil {
		return err
	}
	var err error
	if c.Tokens.keys, err = c.Tokens.validate(c.Rules); err != nil {
		return err
	}
	return c.validateProtocols()
}

// checkRoutes checks what chooses a request's rule and origin: the origins' names and the
// rules (with cache.client_cache_control, the default of one of their settings). LoadConfig
// runs it too, so that a mistake there is reported with the file's name: it depends on
// nothing flags change.
func (c *Config) checkRoutes() error {
	if err := checkClientCC("cache.client_cache_control", c.Cache.ClientCacheControl); err != nil {
		return err
	}
	if err := checkClientPreconditions("cache.client_preconditions", c.Cache.ClientPreconditions); err != nil {
		return err
	}
	names := map[string]bool{}
	for i, o := range c.Origins {
		if o.Name == "" {
			continue
		}
		if !cachestatus.IsToken(o.Name) || strings.ContainsAny(o.Name, ":/") {
			return fmt.Errorf("origins[%d]: name %q must start with a letter and hold no spaces, commas, ':' or '/'", i, o.Name)
		}
		if names[o.Name] {
			return fmt.Errorf("origins[%d]: name %q listed twice", i, o.Name)
		}
		names[o.Name] = true
	}
	var matches []rules.Match
	for i, r := range c.Rules {
		if r.PathPrefix != "" && r.Match.PathPrefix != "" {
			return fmt.Errorf("rules[%d]: path_prefix and match.path_prefix: give one", i)
		}
		if p := r.prefix(); p != "" && (!strings.HasPrefix(p, "/") || slices.Contains(strings.Split(p, "/"), "..")) {
			return fmt.Errorf("rules[%d]: path_prefix %q must be a clean absolute path", i, p)
		}
		if r.TTL < 0 {
			return fmt.Errorf("rules[%d]: ttl must not be negative", i)
		}
		if err := r.RuleTTLs.check(); err != nil {
			return fmt.Errorf("rules[%d]: %w", i, err)
		}
		if err := r.RuleAccess.check(); err != nil {
			return fmt.Errorf("rules[%d]: %w", i, err)
		}
		if err := checkClientCC("client_cache_control", r.ClientCacheControl); err != nil {
			return fmt.Errorf("rules[%d]: %w", i, err)
		}
		if err := checkClientPreconditions("client_preconditions", r.ClientPreconditions); err != nil {
			return fmt.Errorf("rules[%d]: %w", i, err)
		}
		if err := r.RuleHeaders.check(r.Bypass != nil && *r.Bypass); err != nil {
			return fmt.Errorf("rules[%d]: %w", i, err)
		}
		m := r.conditions()
		if j := slices.IndexFunc(matches, func(o rules.Match) bool { return reflect.DeepEqual(o, m) }); j >= 0 {
			// Two rules with one set of conditions: which setting applies would be an accident
			// of their order.
			return fmt.Errorf("rules[%d]: the same conditions as rules[%d] (path_prefix %q): merge them", i, j, m.PathPrefix)
		}
		matches = append(matches, m)
		if key := r.shapesStored(); key != "" && m.HasRequestConditions() {
			return fmt.Errorf("rules[%d]: %s can't depend on methods, headers or cookies, which the cache key doesn't hold: one client's request would shape what every client gets (such a rule may set bypass, token, the access settings, response_headers, and origin and request_headers with bypass)", i, key)
		}
		switch {
		case r.Origin != "" && !names[r.Origin]:
			return fmt.Errorf("rules[%d]: origin %q is not the name of an origin", i, r.Origin)
		case r.StripPrefix && r.Origin == "":
			return fmt.Errorf("rules[%d]: strip_prefix needs origin (the rule that chooses the origin says what it is sent)", i)
		case r.StripPrefix && !strings.HasSuffix(r.prefix(), "/"):
			// "/vod" would also match "/vodka/x", and send it as "/ka/x".
			return fmt.Errorf("rules[%d]: strip_prefix needs a path_prefix ending in '/' (%q)", i, r.prefix())
		}
	}
	if _, err := rules.New(matches); err != nil {
		return err
	}
	return nil
}

// Size is a byte count written as 512MiB, 10GiB, 64KiB, 1.5GB or a plain number.
type Size int64

// ParseSize parses a Size.
func ParseSize(s string) (Size, error) {
	s = strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   float64
	}{
		{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
		{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1},
	}
	mult := 1.0
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || f*mult > 1<<62 {
		return 0, fmt.Errorf("%q is not a size (e.g. 512MiB, 10GiB)", s)
	}
	return Size(f * mult), nil
}

func (s Size) String() string {
	for _, u := range []struct {
		suffix string
		n      int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if int64(s) >= u.n && int64(s)%u.n == 0 {
			return strconv.FormatInt(int64(s)/u.n, 10) + u.suffix
		}
	}
	return strconv.FormatInt(int64(s), 10)
}

// Set makes Size a flag.Value.
func (s *Size) Set(v string) error {
	n, err := ParseSize(v)
	if err != nil {
		return err
	}
	*s = n
	return nil
}

// UnmarshalYAML accepts "512MiB" or a number.
func (s *Size) UnmarshalYAML(n *yaml.Node) error {
	return s.Set(n.Value)
}
