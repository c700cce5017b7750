# upwatch — see README.md. `make run` starts the service on embedded storage
# with the sample targets; `make test` runs every test.
GO        ?= go
BIN       := bin/upwatch
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REVISION  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS   := -s -w -X main.version=$(VERSION) -X main.revision=$(REVISION)
CONFIG    ?= examples/upwatch.yaml

.PHONY: all build run test test-future test-integration screenshots vet fmt lint bench load load-scale load-floor image compose-check compose-env release-snapshot clean

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/upwatch

# LISTEN moves the service and its demo targets: make run LISTEN=127.0.0.1:9090
run: build
	./$(BIN) serve -config $(CONFIG) $(if $(LISTEN),-listen $(LISTEN))

vet:
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

lint: vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

# Every test, with the race detector. Tests that need a real server
# (promtool, InfluxDB, PostgreSQL) skip with a message when it is missing;
# .ci/run installs and starts them.
test: lint
	$(GO) test -race -count=1 ./...
	$(MAKE) test-future

# The packages that reason about dates, again with the test clock years
# ahead (leap day included): a test that compares a date of its own with one
# the code took from the wall clock fails here. Dates in tests come from
# internal/clock/clocktest, which UPWATCH_TEST_NOW moves.
test-future:
	UPWATCH_TEST_NOW=2036-02-29T23:59:30Z $(GO) test -count=1 ./alerting/... ./api/ ./app/ ./registry/... ./tenancy/ ./sla/ ./tsdb/... ./web/ ./statuspage/ ./push/ ./agent/ ./fleet/

# The tests against a real InfluxDB 1.8.10 (built once into a cache dir)
# and PostgreSQL 15, started on loopback and stopped on exit; `make test`
# skips them without the servers.
test-integration:
	bash .ci/services/influxdb.sh install
	bash .ci/services/postgres.sh install
	bash .ci/services/victoria.sh install
	set -e; eval "$$(bash .ci/services/influxdb.sh start)"; eval "$$(bash .ci/services/postgres.sh start)"; \
	  eval "$$(bash .ci/services/victoria.sh start)"; \
	  trap 'bash .ci/services/influxdb.sh stop; bash .ci/services/postgres.sh stop; bash .ci/services/victoria.sh stop' EXIT; \
	  UPWATCH_REQUIRE_INFLUX=1 UPWATCH_REQUIRE_POSTGRES=1 UPWATCH_REQUIRE_VM=1 $(GO) test -race -count=1 ./tsdb/... ./registry/... ./tenancy/ ./app/ ./grafana/

# The README's pictures (docs/images/*.png, 1280x800), taken by the
# real-browser tests in headless Chromium (bash .ci/services/chromium.sh
# install).
screenshots:
	bash .ci/services/chromium.sh check
	UPWATCH_REQUIRE_CHROMIUM=1 UPWATCH_DOCS_IMAGES=$(CURDIR)/docs/images $(GO) test -count=1 -v -run 'TestSignedInWebInterface|TestPublicStatusPage' ./e2e/browser/

# Benchmarks: prober throughput, store write throughput, scheduler lag.
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 3s ./prober/ ./app/ ./tsdb/... ./prober/schedule/ ./sla/

# The load harness: the whole service with 10,000 targets at 30 s for 90 s
# (scheduler lag quantiles, checks/s, resident memory), and API target
# reads at 500 requests/s (latency quantiles).
load:
	UPWATCH_LOAD=1 $(GO) test -count=1 -run 'TestLoadTenThousandTargets|TestLoadTargetReads' -v -timeout 10m ./app/ ./api/

# The scale harness of issue 11: the whole service with
# UPWATCH_LOAD_TARGETS targets (default 100000) at UPWATCH_LOAD_INTERVAL
# (default 60s) for UPWATCH_LOAD_INTERVALS intervals (default 3) against a
# loopback server; per interval checks stored, missed and doubled targets,
# lag, CPU and alert commits, then RSS, bytes per sample and /metrics.
load-scale:
	UPWATCH_LOAD_SCALE=1 $(GO) test -count=1 -run '^TestLoadScale$$' -v -timeout 60m ./app/

# The bare cost of a connection per check at the same rate: the floor the
# service's CPU in load-scale is measured against.
load-floor:
	UPWATCH_LOAD_SCALE=1 $(GO) test -count=1 -run '^TestLoadScaleFloor$$' -v -timeout 30m ./app/

# Needs a Docker engine (not on the CI machines; the compose file is
# validated there by `docker-compose config -q` in the deploy tests).
image:
	docker build -f deploy/Dockerfile --build-arg VERSION=$(VERSION) --build-arg REVISION=$(REVISION) -t upwatch:$(VERSION) .

# The keys are required (a ${VAR:?} in the file); stand-ins validate it.
compose-check:
	UPWATCH_BOOTSTRAP_KEY=check UPWATCH_MASTER_KEY=check docker-compose -f docker-compose.yml config -q

# compose-env writes .env for docker-compose.yml with fresh keys and
# passwords, once: an existing .env is kept (its master key opens the
# stored credentials).
compose-env: build
	@if [ -e .env ]; then echo ".env exists; keeping it"; else \
	  umask 077; { \
	    echo "UPWATCH_BOOTSTRAP_KEY=$$(./$(BIN) keygen api-key)"; \
	    echo "UPWATCH_MASTER_KEY=$$(./$(BIN) keygen master-key)"; \
	    echo "INFLUXDB_TOKEN=$$(head -c 32 /dev/urandom | base64 | tr -d '/+=')"; \
	    echo "INFLUXDB_PASSWORD=$$(head -c 18 /dev/urandom | base64 | tr -d '/+=')"; \
	    echo "GRAFANA_ADMIN_PASSWORD=$$(head -c 18 /dev/urandom | base64 | tr -d '/+=')"; \
	    echo "POSTGRES_PASSWORD=$$(head -c 18 /dev/urandom | base64 | tr -d '/+=')"; \
	    echo "UPWATCH_AGENT_KEY=$$(./$(BIN) keygen api-key)"; \
	  } > .env; echo "wrote .env (keep a copy of UPWATCH_MASTER_KEY)"; fi

# release-snapshot builds what a release ships (binaries, archives,
# checksums; an SBOM with syft, the image with Docker) into dist/, locally.
GORELEASER ?= $(shell command -v goreleaser 2>/dev/null || echo $(GO) run github.com/goreleaser/goreleaser/v2@v2.15.1)
release-snapshot:
	$(GORELEASER) release --snapshot --clean \
	  --skip=$(subst $(space),$(comma),$(strip validate $(if $(shell command -v syft),,sbom) $(if $(shell docker info >/dev/null 2>&1 && echo y),,docker)))

comma := ,
space := $(empty) $(empty)

clean:
	rm -rf bin dist
