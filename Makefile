# intercloud — see README.md. Two commands matter: `make run` and `make test`.
SHELL := /bin/bash
GO ?= go
BIN := bin/intercloud
export PATH := /usr/local/go/bin:$(PATH):/usr/sbin:/sbin

# Debian packages the tests and benchmarks talk to, as command=package.
TOOLS := bird:bird2 birdc:bird2 ip:iproute2 wg:wireguard-tools dig:dnsutils \
	kdig:knot-dnsutils ping:iputils-ping curl:curl nsenter:util-linux \
	nginx:nginx-light wrk:wrk pkill:procps \
	varnishd:varnish gdnsd:gdnsd dnsperf:dnsperf chromium:chromium \
	wireguard-go:wireguard-go iperf3:iperf3 dot:graphviz strace:strace mount:mount unshare:util-linux
GEOIP := /usr/share/tor/geoip

.PHONY: all build run test unit tools lint bench demo clean fuzz install soak

# ss kills listening sockets in the drift tests.
TOOLS += ss:iproute2

# test/paths impairs a path with packet loss (nftables' numgen).
TOOLS += nft:nftables

# deploy/'s tests: promtool checks the alerting rules, systemd-analyze the units.
TOOLS += promtool:prometheus systemd-analyze:systemd

all: build

# -buildvcs=auto stamps the git revision (intercloud version) even where
# GOFLAGS turns stamping off.
build:
	$(GO) build -buildvcs=auto -o $(BIN) ./cmd/intercloud

run: build
	$(BIN) up -f examples/quickstart

# tools installs what the tests need when it is missing (Debian, as root).
tools:
	@missing=""; for tp in $(TOOLS); do t=$${tp%%:*}; p=$${tp##*:}; \
		command -v $$t >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	[ -f $(GEOIP) ] || missing="$$missing tor-geoipdb"; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "installing:$$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$(echo $$missing | tr ' ' '\n' | sort -u); \
		else echo "not root: cannot install$$missing (tests needing them will skip)"; fi; \
	fi

test: tools
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 20m ./...
	# The role contract under the race detector: one agent loop, roles
	# prepared beside what runs, committed or aborted together.
	$(GO) test -race -count=1 -timeout 10m ./agent/ ./role/ ./internal/listen/

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# Each side-by-side benchmark runs once (1x): they are long runs against
# their peers, not operations to repeat until a time is reached.
bench: tools build
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 30m ./bench/...

# fuzz runs every FuzzXxx target for FUZZTIME each (seed corpora run in make test).
FUZZTIME ?= 20s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "== $$pkg $$f"; \
			$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
		done; \
	done

# soak runs the whole system under load with faults on a seeded schedule
# (root): a fault-free phase of SOAK, then a phase of SOAK with faults;
# the report (report.txt, timeline.png, run.json.gz) goes to bench/soak.
# make test runs a 60 s version that asserts the invariants only.
# SOAK_CLOCK=1 lets the schedule draw the clock step, which steps the
# host's wall clock under every process on the machine: make soak runs
# this test alone and sets it; make test (other packages beside it) does
# not. SOAK_FAULTS=clock-step,kill-edge narrows the kinds drawn.
SOAK ?= 10m
SOAK_SEED ?= 8
SOAK_IDLE ?= 10000
SOAK_CLOCK ?= 1
SOAK_FAULTS ?=
SOAK_OUT ?= $(CURDIR)/bench/soak
soak: tools
	SOAK=$(SOAK) SOAK_SEED=$(SOAK_SEED) SOAK_IDLE=$(SOAK_IDLE) SOAK_CLOCK=$(SOAK_CLOCK) SOAK_FAULTS=$(SOAK_FAULTS) \
		SOAK_BASELINE=1 SOAK_OUT=$(SOAK_OUT) \
		$(GO) test -count=1 -run '^(TestStepClock|TestSoak)$$' -timeout 0 -v ./test/soak/

# demo builds the multi-cloud story in network namespaces (root), runs it
# step by step and keeps it up until Ctrl-C, then removes everything.
demo: build
	$(GO) run ./test/multicloud/demo -bin $(BIN)

# install puts the binary, the systemd units, /etc/intercloud and a system
# user in place (deploy/install.sh); DESTDIR=dir installs under dir
# instead (no user, systemd not told), PREFIX moves the binary.
PREFIX ?= /usr/local
install: build
	DESTDIR="$(DESTDIR)" PREFIX="$(PREFIX)" deploy/install.sh $(BIN)

clean:
	rm -rf bin .intercloud
