# sitegm build. Two set-up commands matter: `make run` and `make test`.
GO       ?= go
BIN      := bin
PREFIX   ?= /usr/local
DESTDIR  ?=
BUILD_DATE := $(shell date -u +%Y-%m-%d)
LDFLAGS  := -X sitegm/internal/version.BuildDate=$(BUILD_DATE)
# Debian packages the tests use as real peers (see docs/testing in README):
# Prometheus scrapes the metrics, headless Chromium renders the status
# page, mmdebstrap and lintian check the Debian package; and the kernel lab's (QEMU, a static busybox, the Debian kernel's headers
# and a compiler for the test module, kmod's depmod).
TEST_DEBS := linuxptp chrony tshark iproute2 systemd sntp ntpsec-ntpdig socat \
	qemu-system-x86 busybox-static linux-headers-amd64 make gcc libc6-dev kmod \
	prometheus chromium mmdebstrap lintian stress-ng
# Commands that prove each package is present.
TEST_CMDS := ptp4l chronyd tshark ip journalctl sntp ntpdig socat qemu-system-x86_64 busybox depmod gcc \
	prometheus promtool chromium mmdebstrap lintian stress-ng
FUZZTIME ?= 60s
# Static binaries without cgo: they run in the kernel lab's initramfs as
# they are, and sitegm can narrow its capabilities on every thread
# (syscall.AllThreadsSyscall refuses to under cgo).
export CGO_ENABLED := 0

# staticcheck, from the Go module proxy (honnef.co/go/tools).
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: all build run test test-deps unit fuzz lint install clean lab deb stress bench-ntp \
	gate-lint gate-tests gate-lab gate-quiet

all: build

build:
	@mkdir -p $(BIN)
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

# The embedded default: simulated receiver, virtual clock, loopback, no root.
run: build
	$(BIN)/sitegm demo --bin $(BIN)

# Install what the tests need (only when missing, and only as root), then run
# every test. Tests that need root skip with a message when not root.
#
# The gate runs what can share the machine side by side: the linters, every
# package's tests with the integration tests that may run together
# (ITEST_PARALLEL at once; each has its own namespaces, ports and files),
# and the kernel lab (one QEMU CPU). Then the quiet group (capacity figures,
# floods: internal/itest Quiet) alone. Every part runs to its end (-k) and
# the gate fails if any part failed.
ITEST_PARALLEL ?= 32
test: test-deps build
	@rc=0; $(MAKE) --no-print-directory -k -j3 -Oline gate-lint gate-tests gate-lab || rc=1; \
	$(MAKE) --no-print-directory gate-quiet || rc=1; \
	if [ $$rc = 0 ]; then echo "make test: PASS"; else echo "make test: FAIL"; fi; exit $$rc

gate-lint: lint

gate-tests:
	SITEGM_ITEST_GROUP=parallel $(GO) test -count=1 -timeout 30m -parallel $(ITEST_PARALLEL) ./...

gate-quiet:
	SITEGM_ITEST_GROUP=quiet $(GO) test -count=1 -timeout 20m ./internal/itest

gate-lab: build
	$(BIN)/sitegm-lab $(LAB_ARGS)

# The gate STRESS_RUNS times in a row (default 10), stopping at the first red
# run; with STRESS_HOG=1 (the default) Debian's stress-ng keeps one CPU busy
# throughout, as a second job on the machine would. STRESS_RUN=REGEX runs
# only those integration tests (go test -run) instead of the whole gate.
# Each run's output is kept in bin/stress/.
#   make stress                          10 x make test, one CPU busy
#   make stress STRESS_HOG=0             10 x make test on a quiet machine
#   make stress STRESS_RUN=TestNTPHoldover STRESS_RUNS=20
#   make stress STRESS_RUN='^(TestA|TestB)$$'   (a $ in the regex is written $$: make reads it)
STRESS_RUNS ?= 10
STRESS_HOG ?= 1
STRESS_RUN ?=
stress: test-deps build
	@command -v stress-ng >/dev/null || { echo "stress: stress-ng is missing (make test-deps installs it as root)"; exit 2; }
	@mkdir -p $(BIN)/stress; hog=""; \
	if [ "$(STRESS_HOG)" = 1 ]; then stress-ng --cpu 1 --quiet & hog=$$!; echo "stress: stress-ng --cpu 1 (pid $$hog) keeps one CPU busy"; fi; \
	trap '[ -z "$$hog" ] || kill $$hog 2>/dev/null' EXIT INT TERM; \
	for i in $$(seq 1 $(STRESS_RUNS)); do \
	  s=$$(date +%s); log=$(BIN)/stress/run-$$i.log; \
	  if [ -n "$(STRESS_RUN)" ]; then $(GO) test -count=1 -timeout 30m -parallel $(ITEST_PARALLEL) -v -run '$(STRESS_RUN)' ./internal/itest >$$log 2>&1; \
	  else $(MAKE) --no-print-directory test >$$log 2>&1; fi; rc=$$?; \
	  echo "stress: run $$i/$(STRESS_RUNS) $$( [ $$rc = 0 ] && echo PASS || echo FAIL ) in $$(( $$(date +%s) - s )) s ($$log)"; \
	  if [ $$rc != 0 ]; then grep -E '^(--- FAIL|FAIL|lab: .* FAIL)' $$log | head -20; exit 1; fi; \
	done; echo "stress: $(STRESS_RUNS) runs in a row PASS"

# NTP against chronyd on one veth lab (README, NTP): client
# offset sd and mean error (interleaved and basic), CPU per request and the
# no-loss rate, three runs each, medians and ranges. Root, a quiet machine,
# about 15 minutes; it reports, asserts nothing.
bench-ntp: test-deps build
	$(GO) test -count=1 -timeout 60m -run '^$$' -bench '^BenchmarkNTPServers$$' -benchtime 1x -v ./internal/itest

# The kernel lab (docs/hardware.md): a Debian kernel under QEMU with a test
# PHC/PPS module; sitegm's hardware paths against it. Needs root and the
# packages of test-deps; says so and skips otherwise.
#   make lab LAB_ARGS="--freq-error -40ppm --pulse-width 100ms --jitter 20ns"
lab: build
	$(BIN)/sitegm-lab $(LAB_ARGS)

test-deps:
	@missing=""; for c in $(TEST_CMDS); do command -v $$c >/dev/null 2>&1 || PATH=$$PATH:/usr/sbin:/sbin command -v $$c >/dev/null 2>&1 || missing="$$missing $$c"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "test-deps: missing$$missing; installing: $(TEST_DEBS)"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get update -qq && apt-get install -y -qq --no-install-recommends $(TEST_DEBS) >/dev/null; \
	  else \
	    echo "test-deps: missing$$missing (not root or no apt-get): the tests that need them will skip"; \
	  fi; \
	fi

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) mod tidy -diff
	$(GO) run $(STATICCHECK) ./...

# Longer fuzzing of every decoder of outside input ($(FUZZTIME) each).
fuzz:
	@grep -r --include='*_test.go' -o '^func Fuzz[A-Za-z0-9_]*' . | sort | \
	while IFS=: read -r file fn; do \
	  pkg=./$$(dirname $${file#./}); fn=$${fn#func }; \
	  echo "== $$pkg $$fn"; \
	  $(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	done

# The Debian package, bin/sitegm_VERSION_amd64.deb (packaging/deb/build.sh:
# dpkg-deb, reproducible from SOURCE_DATE_EPOCH, default the last commit).
deb:
	packaging/deb/build.sh $(BIN)

# Binaries, the example configuration as /etc/sitegm/sitegm.toml (an
# existing one is kept), the unit, the docs, and the sitegm system user.
UNITDIR ?= /etc/systemd/system
install: build
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)/etc/sitegm $(DESTDIR)$(UNITDIR) $(DESTDIR)$(PREFIX)/share/doc/sitegm
	install -m 0755 $(BIN)/sitegm $(BIN)/gnss-sim $(BIN)/ptpv1-probe $(DESTDIR)$(PREFIX)/bin/
	@if [ -e $(DESTDIR)/etc/sitegm/sitegm.toml ]; then \
	  echo "keeping existing /etc/sitegm/sitegm.toml (new example: /etc/sitegm/sitegm.toml.example)"; \
	  install -m 0644 configs/sitegm.toml $(DESTDIR)/etc/sitegm/sitegm.toml.example; \
	else install -m 0644 configs/sitegm.toml $(DESTDIR)/etc/sitegm/sitegm.toml; fi
	sed 's#/usr/local/bin/#$(PREFIX)/bin/#g; s#/usr/local/share/#$(PREFIX)/share/#g' configs/sitegm.service > $(DESTDIR)$(UNITDIR)/sitegm.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/sitegm.service
	install -m 0644 README.md docs/*.md docs/*.png configs/sitegm-alerts.yml $(DESTDIR)$(PREFIX)/share/doc/sitegm/
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ] && ! id sitegm >/dev/null 2>&1; then \
	  useradd --system --no-create-home --home-dir /var/lib/sitegm --shell /usr/sbin/nologin --groups dialout sitegm && \
	  echo "created system user sitegm"; fi
	@if [ -z "$(DESTDIR)" ] && command -v systemctl >/dev/null 2>&1; then systemctl daemon-reload 2>/dev/null || true; fi
	@echo "installed; edit /etc/sitegm/sitegm.toml, then: systemctl enable --now sitegm"

clean:
	rm -rf $(BIN)
