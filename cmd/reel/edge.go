package main

import (
	"crypto/rand"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/reelvideo/reel/edge"
)

const edgeUsage = `Usage:
  reel edge --origin URL [flags]
  reel edge --config edge.yaml [flags]

Runs the caching reverse proxy: RFC 9111 caching with RFC 5861 stale handling, request
coalescing (one origin fetch per object, streamed to every waiting client as it arrives),
Vary variants, invalidation after unsafe methods, and RFC 9211 Cache-Status on every response.
Flags override the config file, which adds virtual hosts, per-path rules and policy.

Examples:
  reel edge --origin http://127.0.0.1:8080
  reel edge --origin http://127.0.0.1:8080 --listen 127.0.0.1:8081 --memory 1GiB
  reel edge --origin http://127.0.0.1:8080 --cache-dir /var/cache/reel --disk 50GiB
  reel edge --config samples/edge.yaml
  reel edge --origin http://127.0.0.1:8080 --tls-cert edge.pem --tls-key edge.key --listen :8443
  reel edge --origin http://127.0.0.1:8080 --tls-self-signed out/tls   # development: trust out/tls/ca.pem
  reel edge --origin https://origin.internal --origin-ca origin-ca.pem  # a private origin's CA
  reel edge --origin http://127.0.0.1:8080 --tls-self-signed out/tls --http3 --listen 127.0.0.1:8443
      # HTTP/1.1 and HTTP/2 on tcp 127.0.0.1:8443, HTTP/3 on udp 127.0.0.1:8443 (Alt-Svc on TCP responses)
  reel edge --origin http://127.0.0.1:8080 --h2c                      # HTTP/2 without TLS, prior knowledge

  # A tiered cluster: edges send misses to the shield owning each object (one origin fetch
  # per object however many edges miss); the shields fetch from the origin.
  reel edge --name shield-1 --origin http://origin:8080 --listen :8081
  reel edge --name edge-1 --origin http://origin:8080 --parent http://shield-1:8081 --parent http://shield-2:8081

Over TLS, HTTP/2 is offered by ALPN (http2.off in the config to disable); several certificates
chosen by SNI, HTTP/2 limits and HTTP/3 settings go in the config's tls: and http2: sections.
`

func runEdge(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("edge", flag.ContinueOnError)
	cfgFile := fs.String("config", "", "YAML configuration file (origins by host, rules, policy, limits)")
	origin := fs.String("origin", "", "origin URL for every host (adds or replaces the default origin)")
	originCA := fs.String("origin-ca", "", "PEM file of the CAs trusted for the default https origin, instead of the system roots")
	listen := fs.String("listen", "", "address to serve clients on (default 127.0.0.1:8081)")
	admin := fs.String("admin", "", "admin API address: purge, warm-up, stats, /metrics (default 127.0.0.1:9091; \"\" turns it off; token from REEL_ADMIN_TOKEN)")
	var memory, disk edge.Size
	fs.Var(&memory, "memory", "memory for cached bodies, e.g. 512MiB (default 512MiB): the memory tier (7/8) and fills in flight (1/8); the Go memory limit follows from it unless GOMEMLIMIT is set")
	cacheDir := fs.String("cache-dir", "", "folder for the disk tier (bodies as files, index in badger); none: memory only")
	fs.Var(&disk, "disk", "disk tier size: what the cache folder may hold on disk, index included, e.g. 10GiB (default 10GiB, at least 8MiB)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	accessLog := fs.Bool("access-log", false, "log one line per request")
	accessFormat := fs.String("access-log-format", "", "access log lines: text (default) or json (one JSON object per line; implies --access-log)")
	accessPath := fs.String("access-log-path", "", "append access log lines to this file, or \"stdout\" (default: the log on stderr; implies --access-log)")
	name := fs.String("name", "", "this node's name in Cache-Status and Via (default reel); one per node of a cluster")
	var parents stringsFlag
	fs.Var(&parents, "parent", "a parent cache (shield) URL misses go to instead of the origin, chosen per object by rendezvous hashing (repeatable; replaces the config's parents)")
	tlsCert := fs.String("tls-cert", "", "serve HTTPS with this certificate chain (PEM); reloaded when the file changes")
	tlsKey := fs.String("tls-key", "", "the private key of --tls-cert (PEM)")
	tlsSelf := fs.String("tls-self-signed", "", "serve HTTPS with a development CA and certificate kept in this folder (clients trust its ca.pem)")
	h2c := fs.Bool("h2c", false, "serve HTTP/2 without TLS to clients that open with its preface (prior knowledge, RFC 9113 §3.3), beside HTTP/1.1")
	http3 := fs.Bool("http3", false, "serve HTTP/3 on UDP at the --listen port too (needs TLS), advertised to TCP clients with Alt-Svc")
	maxClientConns := fs.Int("max-client-conns", 0, "open client connections at most; more are closed at accept (default 10000; limits.max_client_conns)")
	maxOriginConns := fs.Int("max-conns-per-origin", 0, "connections to each origin at most; more requests queue, then get 503 (default 256; limits.max_conns_per_origin)")
	fs.Usage = usageFunc(fs, edgeUsage)
	logger, code, ok := parseServerFlags(fs, args, logLevel, stdout, stderr)
	if !ok {
		return code
	}
	// load reads the config file and applies the flags over it: at start, and again for a
	// reload (SIGHUP), so that a reloaded file compares with what runs.
	load := func() (edge.Config, int, string) {
		cfg := edge.DefaultConfig()
		if *cfgFile != "" {
			var err error
			if cfg, err = edge.LoadConfig(*cfgFile); err != nil {
				return cfg, exitFailure, oneLine(err)
			}
		}
		if *origin != "" {
			replaced := false
			for i := range cfg.Origins {
				if o := cfg.Origins[i]; o.Host == "*" || (o.Host == "" && o.Name == "") { // the default origin, not one only rules name
					// The flag's one URL replaces a pool too, with its settings.
					cfg.Origins[i].URL, cfg.Origins[i].URLs, cfg.Origins[i].Pool, replaced = *origin, nil, edge.Pool{}, true
				}
			}
			if !replaced {
				cfg.Origins = append(cfg.Origins, edge.Origin{Host: "*", URL: *origin})
			}
		}
		if *originCA != "" {
			set := false
			for i := range cfg.Origins {
				if o := cfg.Origins[i]; o.Host == "*" || (o.Host == "" && o.Name == "") { // the default origin, not one only rules name
					cfg.Origins[i].CAFile, set = *originCA, true
				}
			}
			if !set {
				return cfg, exitUsage, "--origin-ca is for the default origin: give --origin URL (or host \"*\" in the config)"
			}
		}
		if *listen != "" {
			cfg.Listen = *listen
		}
		if flagSet(fs, "admin") {
			cfg.Admin = *admin // "" turns the admin API off
		}
		if memory > 0 {
			cfg.Memory = memory
		}
		if *cacheDir != "" {
			cfg.CacheDir = *cacheDir
		}
		if *accessLog {
			cfg.AccessLog = true
		}
		if *accessFormat != "" {
			cfg.AccessLog, cfg.AccessLogFormat = true, *accessFormat
		}
		if *accessPath != "" {
			cfg.AccessLog, cfg.AccessLogPath = true, *accessPath
		}
		if disk > 0 {
			cfg.Disk = disk
		}
		if *name != "" {
			cfg.Name = *name
		}
		if len(parents) > 0 {
			setParents(&cfg.Parents, parents)
		}
		// TLS flags replace the config file's certificates.
		switch {
		case *tlsSelf != "" && (*tlsCert != "" || *tlsKey != ""):
			return cfg, exitUsage, "--tls-self-signed and --tls-cert/--tls-key exclude each other"
		case *tlsSelf != "":
			cfg.TLS.SelfSigned, cfg.TLS.Certificates = *tlsSelf, nil
		case (*tlsCert == "") != (*tlsKey == ""):
			return cfg, exitUsage, "--tls-cert and --tls-key go together"
		case *tlsCert != "":
			cfg.TLS.SelfSigned, cfg.TLS.Certificates = "", []edge.CertKey{{Cert: *tlsCert, Key: *tlsKey}}
		}
		if *maxClientConns != 0 {
			cfg.Limits.MaxClientConns = *maxClientConns
		}
		if *maxOriginConns != 0 {
			cfg.Limits.MaxConnsPerOrigin = *maxOriginConns
		}
		if *h2c {
			cfg.HTTP2.H2C = true
		}
		if *http3 {
			cfg.TLS.HTTP3 = true
		}
		return cfg, 0, ""
	}
	cfg, code, msg := load()
	if code != 0 {
		fmt.Fprintf(stderr, "reel edge: %s\n", msg)
		return code
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "reel edge: %s (run 'reel edge -h')\n", oneLine(err))
		return exitUsage
	}
	// Before the tiers fill: the limit is what keeps RSS near --memory (edge/memlimit.go).
	mem := edge.SetGoMemoryLimit(cfg)
	procs := edge.SetGoProcs(cfg) // a P for each HTTP/1.1 event loop (edge/procs.go)
	e, err := edge.New(cfg, logger)
	if err != nil {
		fmt.Fprintf(stderr, "reel edge: %s\n", oneLine(err))
		return exitFailure
	}
	defer e.Close()
	if !mem.LimitFromEnv {
		defer e.FollowDiskIndex(mem.Limit, 5*time.Second)()
	}
	front, err := edge.NewFrontend(e, cfg, logger)
	if err != nil {
		fmt.Fprintf(stderr, "reel edge: %s\n", oneLine(err))
		return exitFailure
	}
	// Every listener is bound before anything is printed: an address printed answers, and one
	// that is taken stops the edge before it claims to serve.
	ln, err := front.Listen(cfg.Listen)
	if err != nil {
		fmt.Fprintf(stderr, "reel edge: %s\n", oneLine(err))
		return exitFailure
	}
	unbind := func() { ln.Close(); front.Close() } // the TCP listener, and the UDP socket of HTTP/3
	servers := []listening{{front, ln}}
	var token string
	var generated bool
	var aln net.Listener // nil: no admin API
	if cfg.Admin != "" {
		if token, generated, err = adminToken(cfg); err != nil {
			unbind()
			fmt.Fprintf(stderr, "reel edge: %s\n", oneLine(err))
			return exitFailure
		}
		if aln, err = net.Listen("tcp", cfg.Admin); err != nil {
			unbind()
			fmt.Fprintf(stderr, "reel edge: admin: %s\n", oneLine(err))
			return exitFailure
		}
		servers = append(servers, listening{&http.Server{Handler: e.AdminHandler(token), ReadHeaderTimeout: 10 * time.Second}, aln})
	}

	// Logged once it serves: an edge that can't start says so in one line.
	logger.Info("go memory limit", "bytes", mem.Limit, "from_gomemlimit", mem.LimitFromEnv, "gogc", mem.GCPercent, "from_gogc", mem.GCFromEnv)
	logger.Info("go processors", "gomaxprocs", procs.Procs, "from_gomaxprocs", procs.FromEnv, "http1_event_loops", procs.Loops)
	if ca := front.CAFile(); ca != "" {
		fmt.Fprintf(stdout, "development certificate for localhost; clients trust %s\n", ca)
	}
	fmt.Fprintf(stdout, "reel edge serving %s://%s → %s\n", front.Scheme(), ln.Addr(), originsSummary(cfg))
	for _, line := range front.Describe() {
		fmt.Fprintf(stdout, "  %s\n", line)
	}
	if aln != nil {
		fmt.Fprintf(stdout, "admin API at http://%s (purge, warm-up, stats, /metrics)\n", aln.Addr())
		if generated {
			fmt.Fprintf(stdout, "admin token (set REEL_ADMIN_TOKEN to choose one): %s\n", token)
		}
	}
	defer reloadOnHangup(e, *cfgFile, load, logger)()
	return serveUntilSignal("edge", stderr, 10*time.Second, servers...)
}

// reloadOnHangup reloads the config file into e on every SIGHUP until the returned function
// is called (README "Reload"): a file that doesn't load or validate is one error line naming
// the file and the problem, and the running configuration stays; a restart-only key the file
// changes is a warning naming it, and keeps its running value.
func reloadOnHangup(e *edge.Edge, file string, load func() (edge.Config, int, string), log *slog.Logger) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-hup:
			}
			if file == "" {
				log.Warn("config reload: no --config file to reload")
				continue
			}
			cfg, code, msg := load()
			if code == 0 {
				if err := cfg.Validate(); err != nil {
					msg = oneLine(err)
				}
			}
			if msg != "" {
				log.Error("config reload failed; the running configuration stays", "file", file, "err", msg)
				continue
			}
			ignored, err := e.Reload(cfg)
			if err != nil {
				log.Error("config reload failed; the running configuration stays", "file", file, "err", oneLine(err))
				continue
			}
			for _, k := range ignored {
				log.Warn("config reload: this key needs a restart; it keeps its running value", "file", file, "key", k)
			}
			log.Info("config reloaded", "file", file)
		}
	}()
	return func() { signal.Stop(hup); close(done) }
}

// adminToken returns the admin bearer token: REEL_ADMIN_TOKEN, else the configured file,
// else a fresh random one (generated is then true).
func adminToken(cfg edge.Config) (token string, generated bool, err error) {
	if t := strings.TrimSpace(os.Getenv("REEL_ADMIN_TOKEN")); t != "" {
		return t, false, nil
	}
	if cfg.AdminTokenFile != "" {
		b, err := os.ReadFile(cfg.AdminTokenFile)
		if err != nil {
			return "", false, fmt.Errorf("admin token: %w", err)
		}
		if t := strings.TrimSpace(string(b)); t != "" {
			return t, false, nil
		}
		return "", false, fmt.Errorf("admin token file %s is empty", cfg.AdminTokenFile)
	}
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", false, err
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), true, nil
}

func originsSummary(cfg edge.Config) string {
	s := ""
	for i, o := range cfg.Origins {
		if i > 0 {
			s += ", "
		}
		switch {
		case o.Host == "*":
			s += o.Describe()
		case o.Host == "": // reached through the rules that name it
			s += o.Name + "=" + o.Describe()
		default:
			s += o.Host + "=" + o.Describe()
		}
	}
	return s
}

// setParents makes urls the whole shield tier, as --parent does: the config file's parents go,
// those found by its DNS name too.
func setParents(p *edge.Parents, urls []string) {
	p.URLs = urls
	p.DNS, p.DNSServer, p.Scheme, p.Refresh = "", "", "", 0
}

// flagSet reports whether the command line gave flag name, even as "".
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
