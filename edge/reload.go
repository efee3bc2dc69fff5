package edge

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
)

// Config reload (SIGHUP in `reel edge`, Edge.Reload): what a request reads of the origins,
// the rules, the cache policy and the access log is one *routing, loaded once per request
// (route.go, flow.go); a reload builds a new one from a validated configuration and swaps it
// in. Requests under way finish with the routing they started with; none is dropped.
//
// Reloadable: origins (added, removed, changed — except pools, below), rules (their rate
// limiters are the new resolver's: per-client buckets start afresh), the cache
// policy (cache.* but drop_params, max_variants, underscores_in_headers), access_log,
// access_log_format, access_log_path. Everything else — listen and admin addresses, memory,
// disk, cache_dir, TLS, HTTP/2, limits, live, parents, tokens, geoip, cluster, name, slices, and origin pools
// (urls), whose members' health and metrics live with the process — needs a restart: a reload
// that changes one logs a warning naming the key and keeps the running value.

// routing is the reloadable part of a running edge.
type routing struct {
	origins   []Origin    // what upstreams were built from
	upstreams []*upstream // by index in origins
	routes    routes
	stripping map[stripKey]*upstream // the upstreams of the rules that strip their prefix
	accessLog *accessLog             // nil: no access log (accesslog.go)
	cfg       Config                 // the configuration it came from (for the next reload)
}

// rt is the current routing: read it once per request.
func (e *Edge) rt() *routing { return e.routing.Load() }

// buildRouting builds the routing of a validated cfg, reusing old's upstream for every
// origin whose configuration is unchanged (its connections, and a pool's health, carry on).
func (e *Edge) buildRouting(cfg Config, old *routing) (*routing, error) {
	rt := &routing{origins: cfg.Origins, cfg: cfg}
	for i, o := range cfg.Origins {
		var up *upstream
		if old != nil {
			for j, was := range old.origins {
				if reflect.DeepEqual(was, o) {
					up = old.upstreams[j]
					break
				}
			}
		}
		if up == nil {
			var err error
			if up, err = e.originUpstream(o); err != nil { // upstream.go, pool.go
				return nil, fmt.Errorf("origins[%d]: %w", i, err)
			}
		}
		rt.upstreams = append(rt.upstreams, up)
	}
	var err error
	if rt.routes, err = newRoutes(cfg.Origins, cfg.Rules, e.keyer, policyOptions(cfg), clientDefaults(cfg.Cache)); err != nil {
		return nil, fmt.Errorf("cache keys: %w", err)
	}
	rt.stripping = map[stripKey]*upstream{}
	for _, r := range cfg.Rules {
		if r.StripPrefix {
			i := rt.routes.byName[r.Origin]
			rt.stripping[stripKey{i, r.prefix()}] = rt.upstreams[i].stripped(r.prefix())
		}
	}
	return rt, nil
}

// reloadable are the top-level keys a reload applies; cache is partly (restartCacheKeys).
var reloadable = map[string]bool{"origins": true, "rules": true, "cache": true,
	"access_log": true, "access_log_format": true, "access_log_path": true}

// restartCacheKeys are the cache.* keys that need a restart: the cache key's parameters and
// the stored variants' bound shape what is stored; underscores_in_headers is read per request
// from the start configuration.
var restartCacheKeys = map[string]bool{"drop_params": true, "max_variants": true, "underscores_in_headers": true}

// Reload applies the reloadable keys of cfg (validated) to the running edge. The keys it
// can't apply without a restart and that cfg changes are returned, each named as in the file;
// they keep their running values. On error nothing changed.
func (e *Edge) Reload(cfg Config) (ignored []string, err error) {
	e.reloadMu.Lock()
	defer e.reloadMu.Unlock()
	if err := cfg.Validate(); err != nil { // as the running one was: defaults filled in, hosts normalised
		return nil, err
	}
	old := e.rt()
	next := old.cfg // restart-only keys keep their running values
	ignored = restartOnly(old.cfg, cfg)
	next.Origins, next.Rules, next.Cache = cfg.Origins, cfg.Rules, cfg.Cache
	for k := range restartCacheKeys {
		setYAMLField(&next.Cache, &old.cfg.Cache, k)
	}
	next.AccessLog, next.AccessLogFormat, next.AccessLogPath = cfg.AccessLog, cfg.AccessLogFormat, cfg.AccessLogPath
	// Pools keep the running ones: their members' health checks and series live with them.
	if changedPools(old.cfg.Origins, next.Origins) {
		ignored = append(ignored, "origins (an origin pool changed)")
		next.Origins = old.cfg.Origins
	}
	if err := next.Validate(); err != nil {
		return nil, err
	}
	rt, err := e.buildRouting(next, old)
	if err != nil {
		return nil, err
	}
	if rt.accessLog, err = e.reopenAccessLog(old, next); err != nil {
		return nil, err
	}
	e.routing.Store(rt)
	e.m.ops.setHosts(configuredHosts(next))
	// Upstreams no longer used: their idle connections go (busy ones finish their requests).
	for _, up := range old.upstreams {
		if !contains(rt.upstreams, up) {
			up.client.CloseIdleConnections()
		}
	}
	if old.accessLog != rt.accessLog {
		old.accessLog.close() // after the swap: a request still writing to it at worst loses its line
	}
	return ignored, nil
}

// reopenAccessLog is next's access log: the running one when its settings are unchanged.
func (e *Edge) reopenAccessLog(old *routing, next Config) (*accessLog, error) {
	if old.cfg.AccessLog == next.AccessLog && old.cfg.AccessLogFormat == next.AccessLogFormat && old.cfg.AccessLogPath == next.AccessLogPath {
		return old.accessLog, nil
	}
	return newAccessLog(next, e.log)
}

func contains(ups []*upstream, up *upstream) bool {
	for _, u := range ups {
		if u == up {
			return true
		}
	}
	return false
}

// changedPools reports whether the pools (origins with urls) of a and b differ.
func changedPools(a, b []Origin) bool {
	pools := func(os []Origin) []Origin {
		var out []Origin
		for _, o := range os {
			if len(o.URLs) > 0 {
				out = append(out, o)
			}
		}
		return out
	}
	return !reflect.DeepEqual(pools(a), pools(b))
}

// restartOnly names the keys outside the reloadable ones whose values differ between a and b.
func restartOnly(a, b Config) []string {
	var keys []string
	keys = append(keys, differingKeys(reflect.ValueOf(a), reflect.ValueOf(b), "", func(k string) bool { return reloadable[k] })...)
	keys = append(keys, differingKeys(reflect.ValueOf(a.Cache), reflect.ValueOf(b.Cache), "cache.", func(k string) bool { return !restartCacheKeys[k] })...)
	return keys
}

// differingKeys compares the yaml-tagged fields of two structs of one type, skipping those
// skip says, and names those that differ.
func differingKeys(a, b reflect.Value, prefix string, skip func(string) bool) []string {
	var keys []string
	t := a.Type()
	for i := range t.NumField() {
		name := yamlName(t.Field(i))
		if name == "" || skip(name) {
			continue
		}
		if !reflect.DeepEqual(a.Field(i).Interface(), b.Field(i).Interface()) {
			keys = append(keys, prefix+name)
		}
	}
	return keys
}

// yamlName is a field's key in the file ("" for none or inline).
func yamlName(f reflect.StructField) string {
	tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if tag == "-" || !f.IsExported() {
		return ""
	}
	return tag
}

// setYAMLField copies the field with yaml key name from src to dst (same struct type).
func setYAMLField[T any](dst, src *T, name string) {
	d, s := reflect.ValueOf(dst).Elem(), reflect.ValueOf(src).Elem()
	for i := range d.NumField() {
		if yamlName(d.Type().Field(i)) == name {
			d.Field(i).Set(s.Field(i))
			return
		}
	}
	panic(errors.New("no yaml field " + name)) // a renamed key: restartCacheKeys is stale
}
