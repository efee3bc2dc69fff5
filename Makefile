# Reel — build, run, test, benchmark, fuzz. `make help` lists the targets.
GO      ?= go
BIN     := bin/reel
OUT     ?= out
FUZZTIME ?= 10s

.PHONY: help build ui run test bench bench-peers fuzz samples clean

help: ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-7s %s\n", $$1, $$2}'

# What `reel version` reports: the checkout's git describe (tag, commits since it, commit,
# -dirty with uncommitted changes). Go's own stamp (vcs.revision, vcs.modified) is missing from
# builds in a linked git worktree (golang/go#58218) or with -buildvcs=false; outside git this is
# empty and reel falls back to that stamp or the module version.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null)

build: ## build bin/reel
	$(GO) build -trimpath -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/reel

# The demo page's player libraries (hls.js, dash.js) and the browser tests' driver
# (playwright-core) come from npm, pinned by edge/ui/package-lock.json, into edge/ui/node_modules
# (never committed). npm ci runs again only when the lock file changed or node_modules is gone.
UI := edge/ui
UI_STAMP := $(UI)/node_modules/.package-lock.json

ui: $(UI_STAMP) ## npm ci in edge/ui: the demo page's player libraries and the browser tests' driver

$(UI_STAMP): $(UI)/package.json $(UI)/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	  echo "cd $(UI) && npm ci"; cd $(UI) && npm ci --no-audit --no-fund && touch node_modules/.package-lock.json; \
	else \
	  echo "npm not found: reel demo's page will have no players, and the browser tests are skipped (failed in CI)"; \
	fi

run: build ui ## reel demo: package the samples, loop a live channel, origin + edge cache in front (Ctrl-C stops)
	$(BIN) demo

test: ui ## gofmt check, go vet, and every test with the race detector (browser tests in headless Chromium included)
	@fmt=$$(gofmt -l .); if [ -n "$$fmt" ]; then echo "gofmt needed on:"; echo "$$fmt"; exit 1; fi
	$(GO) vet ./...
	@# cmd/reel's slow tests (browsers, live channels) run side by side: t.Parallel(), at most
	@# -parallel at a time, GOMAXPROCS by default (2 on the 2-core CI; see cmd/reel/parallel_test.go).
	@# -timeout 30m, not go test's 10m: on a new machine the S3 tests first wait for SeaweedFS's
	@# build (internal/testkit/s3.go; 4 minutes on two idle cores, over 15 on busy ones).
	@# TestBrowserLiveRedundantFailover and TestBrowserLiveSubtitles run on their own afterwards
	@# (see cmd/reel/parallel_test.go),
	@# and TestLiveEvent only at full size below: its first-viewer-hit check races the prefetch
	@# against 100 viewers, and beside the other packages' race-detector tests the viewers won
	@# 2 and 4 times (2 of 7 clean-clone runs on 2026-12-07), never with the machine to itself.
	$(GO) test -race -count=1 -timeout=30m -skip '^(TestBrowserLiveRedundantFailover|TestBrowserLiveSubtitles|TestLiveEvent)$$' ./...
	$(GO) test -count=1 -timeout=5m -run '^(TestBrowserLiveRedundantFailover|TestBrowserLiveSubtitles)$$' ./cmd/reel/
	@# Load tests at full size (the race detector makes them ~10x slower, so above they run scaled down).
	$(GO) test -count=1 -run '^(TestCoalescing|TestLargeGETColdFanIn)$$' ./edge/
	$(GO) test -count=1 -timeout=5m -run '^TestLiveEvent$$' ./cmd/reel/

# Shaka Packager, the packaging peer make bench measures against, comes from npm (its release
# binaries, pinned by packager/peers/package-lock.json) into packager/peers/node_modules.
PEERS_STAMP := packager/peers/node_modules/.package-lock.json

$(PEERS_STAMP): packager/peers/package.json packager/peers/package-lock.json
	cd packager/peers && npm ci --no-audit --no-fund && touch node_modules/.package-lock.json

# The edge's peers and load tools make bench runs, from Debian (command:package): nginx, Varnish
# 7.1, wrk, h2load. Installed when missing if this runs as root with apt-get; otherwise listed,
# and the comparisons skip (fail under CI=true) naming what is missing.
BENCH_DEBS := nginx:nginx varnishd:varnish wrk:wrk h2load:nghttp2-client

bench-peers:
	@need=""; for p in $(BENCH_DEBS); do \
	  PATH="$$PATH:/usr/sbin" command -v $${p%%:*} >/dev/null 2>&1 || need="$$need $${p#*:}"; done; \
	if [ -n "$$need" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "apt-get install$$need"; export DEBIAN_FRONTEND=noninteractive; \
	    apt-get update -qq && apt-get install -y -qq --no-install-recommends $$need >/dev/null; \
	  else echo "make bench: missing Debian packages:$$need (apt-get install them as root)"; fi; \
	fi

bench: $(PEERS_STAMP) bench-peers ## Go benchmarks plus side-by-side comparisons (installs nginx, Varnish, wrk, h2load from Debian when missing; needs ffmpeg, npm)
	$(GO) test -run='^$$' -bench=. -benchmem -count=1 ./...
	@# (Among them, edge compression: BenchmarkCompressedHitCPU, the coded hit path; BenchmarkCompressPlaylist, coding per playlist size.)
	REEL_COMPARE=1 $(GO) test -run='^TestCompareFFmpeg$$' -count=1 -v ./packager/
	@# Packaging clear, cenc and cbcs against Shaka Packager: MB/s, peak RSS, encryption's cost.
	REEL_COMPARE=1 $(GO) test -run='^TestCompareShakaPackager$$' -count=1 -timeout=10m -v ./packager/
	REEL_COMPARE=1 $(GO) test -run='^TestAVEndOffsets$$' -count=1 -v ./packager/
	@# Issue 19's hit table: nginx, Varnish and reel over HTTP/1.1, nginx and reel over HTTP/2 on TLS, p99s beside.
	REEL_COMPARE=1 $(GO) test -run='^TestCompareNginx$$' -count=1 -timeout=20m -v ./edge/
	REEL_COMPARE=1 $(GO) test -run='^TestCompareProtocols$$' -count=1 -timeout=15m -v ./edge/
	REEL_COMPARE=1 $(GO) test -run='^TestLiveLatency$$' -count=1 -timeout=5m -v ./cmd/reel/
	$(GO) test -run='^TestLiveEvent$$' -count=1 -timeout=5m -v ./cmd/reel/
	$(GO) test -run='^TestCluster$$' -count=1 -v ./cmd/reel/
	@# Edge memory: RSS / --memory of a real reel edge (--memory 64MiB) over 10,000 distinct 100 KB, then 1 MB objects.
	REEL_MEMBENCH=1 $(GO) test -run='^TestEdgeMemoryBench$$' -count=1 -timeout=15m -v ./cmd/reel/
	@# Live prefetch economics: client and origin bytes and requests, 1/10/100 viewers, one rendition and spread.
	REEL_ECONOMICS=1 $(GO) test -run='^TestLiveEconomics$$' -count=1 -timeout=15m -v ./cmd/reel/
	@# Hardening: origin requests for 300 concurrent requests on a failing key; origin bytes per client byte for cold ranges.
	REEL_HARDENING=1 $(GO) test -run='^(TestHardeningFigures|TestClientLimitFigures)$$' -count=1 -v ./edge/
	@# Signed URLs: a memory hit with a query token checked against one without (CPU per request, ratio).
	REEL_HITBENCH=1 $(GO) test -run='^TestHitPathTokenCost$$' -count=1 -timeout=5m -v ./edge/
	@# S3 origin: cold fill of a packaged ladder through reel origin --dir s3://… against --dir DIR (MB/s, ratio).
	REEL_S3BENCH=1 $(GO) test -run='^TestS3OriginFillFigures$$' -count=1 -timeout=10m -v ./packager/
	@# Origin pools: time to move traffic off a killed member and to take it back (under load, light, none).
	REEL_POOLBENCH=1 $(GO) test -run='^TestPoolFailoverFigures$$' -count=1 -timeout=5m -v ./edge/

fuzz: ## short fuzz runs of every parser of outside bytes
	$(GO) test -run='^$$' -fuzz='^FuzzOpenInput$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=50x ./packager/
	$(GO) test -run='^$$' -fuzz='^FuzzCheckPath$$' -fuzztime=$(FUZZTIME) ./packager/
	$(GO) test -run='^$$' -fuzz='^FuzzReadStream$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=50x ./packager/
	$(GO) test -run='^$$' -fuzz='^FuzzLifetime$$' -fuzztime=$(FUZZTIME) ./edge/policy/
	$(GO) test -run='^$$' -fuzz='^FuzzKey$$' -fuzztime=$(FUZZTIME) ./edge/cachekey/
	$(GO) test -run='^$$' -fuzz='^FuzzKeyCookies$$' -fuzztime=$(FUZZTIME) ./edge/cachekey/
	$(GO) test -run='^$$' -fuzz='^FuzzStatus$$' -fuzztime=$(FUZZTIME) ./edge/cachestatus/
	$(GO) test -run='^$$' -fuzz='^FuzzParse$$' -fuzztime=$(FUZZTIME) ./rangecache/
	$(GO) test -run='^$$' -fuzz='^FuzzReadHead$$' -fuzztime=$(FUZZTIME) ./edge/h1/
	$(GO) test -run='^$$' -fuzz='^FuzzClassify$$' -fuzztime=$(FUZZTIME) ./manifest/
	$(GO) test -run='^$$' -fuzz='^FuzzDiscover$$' -fuzztime=$(FUZZTIME) ./manifest/
	$(GO) test -run='^$$' -fuzz='^FuzzCapFreshness$$' -fuzztime=$(FUZZTIME) ./edge/policy/
	$(GO) test -run='^$$' -fuzz='^FuzzHTTPDate$$' -fuzztime=$(FUZZTIME) ./edge/policy/
	$(GO) test -run='^$$' -fuzz='^FuzzLooped$$' -fuzztime=$(FUZZTIME) ./edge/
	$(GO) test -run='^$$' -fuzz='^FuzzVerify$$' -fuzztime=$(FUZZTIME) ./edge/token/
	$(GO) test -run='^$$' -fuzz='^FuzzParse$$' -fuzztime=$(FUZZTIME) ./packager/cpix/
	$(GO) test -run='^$$' -fuzz='^FuzzParseVTT$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=50x ./packager/subtitles/
	$(GO) test -run='^$$' -fuzz='^FuzzParseSRT$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=50x ./packager/subtitles/
	$(GO) test -run='^$$' -fuzz='^FuzzParseTTML$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=50x ./packager/subtitles/
	$(GO) test -run='^$$' -fuzz='^FuzzStpp$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=50x ./packager/subtitles/
	$(GO) test -run='^$$' -fuzz='^FuzzDetect$$' -fuzztime=$(FUZZTIME) ./packager/captions/

samples: ## regenerate samples/ with ffmpeg (committed; rarely needed)
	bash samples/make-samples.sh

clean: ## remove build output and packaged presentations
	rm -rf bin $(OUT)
