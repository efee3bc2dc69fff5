package edge

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Members found by DNS, for the cluster purge (cluster.go: the admin APIs of every edge and
// shield) and the shield tier (parents.go: the shields' client listeners). One name lists
// them — a Kubernetes headless Service gives both forms:
//
//   - an SRV name, starting with '_' (_http._tcp.reel-shield.ns.svc.cluster.local): each
//     target and port is a member, named by its target (a StatefulSet pod's stable name, so
//     its identity — and the shield's share of the keys — survives a restart on a new IP);
//   - host:port (reel-shield.ns.svc.cluster.local:8081): each A/AAAA address, with that port.
//
// The name is asked again every refresh while the node runs, so members come and go without a
// restart; a failed lookup keeps the last good answer (a DNS outage must not empty the
// cluster), logged once until a lookup succeeds again.

// defaultDNSRefresh is how often a DNS source is asked again unless configured.
const defaultDNSRefresh = 30 * time.Second

// dnsLookupTimeout bounds one lookup of the parents' name (the cluster's uses its timeout).
const dnsLookupTimeout = 5 * time.Second

// parseDNSSource tells an SRV name (srv true) from a host:port to look up as A/AAAA.
func parseDNSSource(s string) (host string, srv bool, err error) {
	if strings.HasPrefix(s, "_") {
		return s, true, nil
	}
	h, p, err := net.SplitHostPort(s)
	if err != nil || h == "" {
		return "", false, fmt.Errorf("%q is neither an SRV name (_service._tcp.name) nor host:port", s)
	}
	if n, err := strconv.Atoi(p); err != nil || n <= 0 || n > 65535 {
		return "", false, fmt.Errorf("%q: bad port", s)
	}
	return s, false, nil
}

// validateDNS checks the DNS settings shared by the cluster and the parents; section names
// the config section ("cluster", "parents") for the errors.
func validateDNS(section, name, server, scheme string, refresh time.Duration) error {
	if name != "" {
		if _, _, err := parseDNSSource(name); err != nil {
			return fmt.Errorf("%s.dns: %w", section, err)
		}
	}
	if server != "" {
		if _, _, err := net.SplitHostPort(server); err != nil {
			return fmt.Errorf("%s.dns_server %q must be host:port", section, server)
		}
	}
	if scheme != "" && scheme != "http" && scheme != "https" {
		return fmt.Errorf("%s.scheme %q must be http or https", section, scheme)
	}
	if refresh < 0 {
		return fmt.Errorf("%s.refresh must not be negative", section)
	}
	return nil
}

// newResolver is the resolver asking server (host:port), or the system's when server is "".
func newResolver(server string) *net.Resolver {
	if server == "" {
		return net.DefaultResolver
	}
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, server)
	}}
}

// lookupPeers resolves a DNS source into member URLs (scheme://host:port), sorted.
func lookupPeers(ctx context.Context, r *net.Resolver, source, scheme string) ([]string, error) {
	name, srv, err := parseDNSSource(source)
	if err != nil {
		return nil, err
	}
	var peers []string
	if srv {
		_, recs, err := r.LookupSRV(ctx, "", "", name)
		if err != nil {
			return nil, fmt.Errorf("SRV %s: %w", name, err)
		}
		for _, rec := range recs {
			host := strings.TrimSuffix(rec.Target, ".")
			peers = append(peers, scheme+"://"+net.JoinHostPort(host, strconv.Itoa(int(rec.Port))))
		}
	} else {
		host, port, _ := net.SplitHostPort(name)
		addrs, err := r.LookupHost(ctx, host)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", host, err)
		}
		for _, a := range addrs {
			peers = append(peers, scheme+"://"+net.JoinHostPort(a, port))
		}
	}
	return mergePeers(peers), nil
}

// mergePeers is the union of lists of member URLs, sorted, a trailing '/' ignored.
func mergePeers(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		for _, p := range l {
			out = append(out, strings.TrimSuffix(p, "/"))
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// dnsMembers keeps the last good answer of a DNS source, asked again every refresh between
// start and close. onChange, when set, is called (from start, then from the refresh loop)
// with each answer that differs from the one before; the first answer always counts.
type dnsMembers struct {
	what     string // "cluster", "parents": what the log lines start with
	source   string
	scheme   string
	refresh  time.Duration
	timeout  time.Duration
	resolver *net.Resolver
	log      *slog.Logger
	onChange func(members []string)

	mu      sync.Mutex
	last    []string // the last good answer
	good    bool     // a lookup has succeeded
	failing bool     // the last lookup failed (logged once until one succeeds)

	stop chan struct{}
	done chan struct{}
}

func newDNSMembers(what, source, server, scheme string, refresh, timeout time.Duration, log *slog.Logger, onChange func([]string)) *dnsMembers {
	if scheme == "" {
		scheme = "http"
	}
	if refresh <= 0 {
		refresh = defaultDNSRefresh
	}
	if timeout <= 0 {
		timeout = dnsLookupTimeout
	}
	return &dnsMembers{what: what, source: source, scheme: scheme, refresh: refresh, timeout: timeout,
		resolver: newResolver(server), log: log, onChange: onChange,
		stop: make(chan struct{}), done: make(chan struct{})}
}

// start looks the source up once (so that the members are known when it returns, unless DNS
// fails), then every refresh until close.
func (d *dnsMembers) start() {
	d.lookup()
	go func() {
		defer close(d.done)
		t := time.NewTicker(d.refresh)
		defer t.Stop()
		for {
			select {
			case <-d.stop:
				return
			case <-t.C:
				d.lookup()
			}
		}
	}()
}

func (d *dnsMembers) close() {
	close(d.stop)
	<-d.done
}

// lookup asks DNS; on failure the last good answer stays.
func (d *dnsMembers) lookup() {
	ctx, cancel := context.WithTimeout(context.Background(), d.timeout)
	defer cancel()
	peers, err := lookupPeers(ctx, d.resolver, d.source, d.scheme)
	d.mu.Lock()
	if err != nil {
		if !d.failing {
			d.log.Warn(d.what+" DNS lookup failed; keeping the last answer", "dns", d.source, "members", len(d.last), "err", err)
		}
		d.failing = true
		d.mu.Unlock()
		return
	}
	if d.failing {
		d.log.Info(d.what+" DNS lookup works again", "dns", d.source, "members", len(peers))
	}
	d.failing = false
	changed := !d.good || !slices.Equal(peers, d.last)
	d.last, d.good = peers, true
	d.mu.Unlock()
	// Called from one goroutine at a time (start, then the loop), outside the lock: onChange
	// may take its own.
	if changed && d.onChange != nil {
		d.onChange(peers)
	}
}

// members is the last good answer (nil before one).
func (d *dnsMembers) members() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.last
}
