package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/reelvideo/reel/manifest"
	"github.com/reelvideo/reel/packager"
	"gopkg.in/yaml.v3"
)

const originUsage = `Usage:
  reel origin --dir DIR [--listen ADDR]

Serves packaged presentations (the output of 'reel package') over HTTP, as an origin a CDN
can front: segments immutable for a year, manifests with a short TTL, ETag/Last-Modified,
Range and conditional requests, CORS for browser players, no path traversal.

DIR may be one presentation or a folder of them; every master.m3u8 and manifest.mpd found
one level down is printed at start. DIR may be s3://BUCKET/PREFIX, a presentation uploaded by
'reel package -o s3://…' (or a prefix above several): served with the same headers as from
disk, the ETag and Last-Modified from the object's metadata, ranges fetched as ranges. The
bucket may be private: credentials, region and endpoint come from the standard AWS environment
and files, as for 'reel package'.

Examples:
  reel origin --dir out
  reel origin --dir out --listen 0.0.0.0:8080 --manifest-max-age 30s
  AWS_PROFILE=media reel origin --dir s3://my-bucket/vod
  reel origin --config samples/origin.yaml            # flags given as well win over the file
`

func runOrigin(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("origin", flag.ContinueOnError)
	dir := fs.String("dir", "", "folder to serve, or s3://BUCKET/PREFIX (required)")
	listen := fs.String("listen", "127.0.0.1:8080", "address to listen on")
	maxAge := fs.Duration("manifest-max-age", 60*time.Second, "Cache-Control max-age for playlists and MPDs")
	config := fs.String("config", "", "YAML file with dir, listen and manifest_max_age (samples/origin.yaml)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	fs.Usage = usageFunc(fs, originUsage)
	logger, code, ok := parseServerFlags(fs, args, logLevel, stdout, stderr)
	if !ok {
		return code
	}
	if *config != "" {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		cfg, err := loadOriginConfig(*config)
		if err != nil {
			fmt.Fprintf(stderr, "reel origin: %s\n", oneLine(err))
			return exitFailure
		}
		if !set["dir"] && cfg.Dir != "" {
			*dir = cfg.Dir
		}
		if !set["listen"] && cfg.Listen != "" {
			*listen = cfg.Listen
		}
		if !set["manifest-max-age"] && cfg.ManifestMaxAge != 0 {
			*maxAge = cfg.ManifestMaxAge
		}
	}
	if *dir == "" {
		fmt.Fprintln(stderr, "reel origin: missing --dir (run 'reel origin -h')")
		return exitUsage
	}

	h, err := packager.NewOrigin(*dir, packager.OriginOptions{ManifestMaxAge: *maxAge, Logger: logger})
	if err != nil {
		fmt.Fprintf(stderr, "reel origin: %s\n", oneLine(err))
		return exitFailure
	}
	defer h.Close()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(stderr, "reel origin: %s\n", oneLine(err))
		return exitFailure
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	base := "http://" + ln.Addr().String()
	fmt.Fprintf(stdout, "reel origin serving %s at %s\n", *dir, base)
	if strings.HasPrefix(*dir, "s3://") {
		fmt.Fprintf(stdout, "  %s/%s (if the prefix is one presentation)\n", base, manifest.MasterPlaylist)
	}
	for _, u := range presentationURLs(*dir, base) {
		fmt.Fprintf(stdout, "  %s\n", u)
	}

	return serveUntilSignal("origin", stderr, 5*time.Second, listening{srv, ln})
}

// originConfig is what `reel origin --config` reads.
type originConfig struct {
	Dir            string        `yaml:"dir"`
	Listen         string        `yaml:"listen"`
	ManifestMaxAge time.Duration `yaml:"manifest_max_age"`
}

// loadOriginConfig reads a YAML origin config; unknown keys are errors, not silently ignored.
func loadOriginConfig(file string) (originConfig, error) {
	var cfg originConfig
	data, err := os.ReadFile(file)
	if err != nil {
		return cfg, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && err != io.EOF {
		return cfg, fmt.Errorf("%s: %w", file, err)
	}
	if cfg.ManifestMaxAge < 0 {
		return cfg, fmt.Errorf("%s: manifest_max_age %v is negative", file, cfg.ManifestMaxAge)
	}
	return cfg, nil
}

// presentationURLs lists the manifests under dir (itself and one level down).
func presentationURLs(dir, base string) []string {
	var out []string
	for _, pattern := range []string{"", "*"} {
		for _, name := range []string{manifest.MasterPlaylist, manifest.DASHManifest} {
			matches, _ := filepath.Glob(filepath.Join(dir, pattern, name))
			for _, m := range matches {
				rel, err := filepath.Rel(dir, m)
				if err != nil || strings.HasPrefix(rel, ".") {
					continue
				}
				var u strings.Builder
				for _, elem := range strings.Split(filepath.ToSlash(rel), "/") {
					u.WriteString("/" + url.PathEscape(elem))
				}
				out = append(out, base+u.String())
			}
		}
	}
	return out
}
