# eventbus top-level Makefile: drives Meson + Ninja.
#   make          build (release-ish, -O2 -g) into build/, binaries into bin/
#   make run      install deps, build, start eventbusd on ./data, 127.0.0.1:8470
#   make test     install deps, build normal + ASan/UBSan + TSan, run every suite
#                 (TSan: unit suites and the daemon's integration suites)
#   make bench    run the benchmarks under bench/ (not part of make test)
#   make bench-peers  eventbusd beside Redis, NATS JetStream and PostgreSQL
#                 (installs them; PEERS_ARGS="--runs 1 --events 10000" for a quick look)
#   make fuzz     build the libFuzzer targets with clang, run each FUZZ_SECONDS (60)
#   make install  build and install under PREFIX (/usr/local), DESTDIR honoured:
#                 eventbusd (sbin), eventbus, eventbus-log, libeventbus (.so, .a),
#                 headers, eventbus.pc, man pages, the systemd unit and its
#                 environment file; when root and DESTDIR is empty, runs ldconfig
#                 (and systemctl daemon-reload under systemd)
#   make deb      Debian packages (dpkg-buildpackage, lintian) into build-deb/
#   make test-powerloss [BUILD=dir]  the power-loss test (tests/powerloss), many
#                 more crash states than make test, against BUILD's eventbusd
#                 (default build/; e.g. build-fault-datasync must fail)
WERROR  ?= 0
FUZZ_SECONDS ?= 60
BUILD   ?= build
PL_ARGS ?= --cuts 400 --per-cut 5 --seconds 8
BINS    := eventbusd eventbus eventbus-log
MESON_WERROR := $(if $(filter 1,$(WERROR)),-Dwerror=true,-Dwerror=false)
PREFIX  ?= /usr/local
BUILDDIR ?= build

.PHONY: all deps build build-asan build-tsan build-faults run test test-powerloss bench bench-peers fuzz install deb clean

all: build

deps:
	@scripts/deps.sh

build: deps
	@scripts/configure.py build --buildtype=debugoptimized -- $(MESON_WERROR)
	@ninja -C build
	@mkdir -p bin
	@for b in $(BINS); do f=$$(find build -maxdepth 3 -type f -perm -u+x -name $$b | head -1); \
		[ -n "$$f" ] && cp -f $$f bin/ || true; done

build-asan: deps
	@scripts/configure.py build-asan --buildtype=debug \
		-Db_sanitize=address,undefined -Db_lundef=false -- $(MESON_WERROR)
	@ninja -C build-asan

# Builds that each miss one sync (meson -Dfault): the power-loss test must
# fail on them (tests/powerloss/faults.py, part of make test). eventbusd only.
build-faults: deps
	@for f in datasync:skip_datasync dirfsync:skip_dir_fsync; do d=build-fault-$${f%%:*}; \
		[ -f $$d/build.ninja ] || meson setup $$d --buildtype=debugoptimized -Dfault=$${f#*:} >/dev/null; \
		ninja -C $$d src/eventbusd >/dev/null || exit 1; done

build-tsan: deps
	@scripts/configure.py build-tsan --buildtype=debugoptimized \
		-Db_sanitize=thread -Db_lundef=false -- $(MESON_WERROR)
	@ninja -C build-tsan

run: build
	@mkdir -p data
	./bin/eventbusd --data ./data --listen 127.0.0.1:8470

test: build build-asan build-tsan build-faults
	@python3 tests/run.py

test-powerloss: build
	@ninja -C $(BUILD) src/eventbusd >/dev/null
	@for p in always interval; do python3 tests/powerloss/powerloss.py --fsync $$p \
		--eventbusd $(BUILD)/src/eventbusd --eventbus-log build/tools/eventbus-log \
		--shim build/tests/powerloss/libeb_plshim.so $(PL_ARGS) || exit 1; done

bench: build
	@scripts/deps.sh --bench
	@meson configure build -Dbench=true >/dev/null
	@meson setup --reconfigure build >/dev/null
	@ninja -C build >/dev/null
	@python3 bench/run.py

bench-peers: build
	@scripts/deps.sh --bench --peers
	@meson configure build -Dbench=true >/dev/null
	@meson setup --reconfigure build >/dev/null
	@ninja -C build >/dev/null
	@python3 bench/peers/run.py $(PEERS_ARGS)

fuzz:
	@scripts/deps.sh --fuzz
	@[ -f build-fuzz/build.ninja ] || CC=clang meson setup build-fuzz --buildtype=debugoptimized \
		-Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
	@ninja -C build-fuzz fuzzers
	@python3 tests/fuzz/run.py build-fuzz $(FUZZ_SECONDS)

install: deps
	@scripts/configure.py $(BUILDDIR) --buildtype=debugoptimized -- $(MESON_WERROR) -Dprefix=$(PREFIX)
	@ninja -C $(BUILDDIR)
	meson install -C $(BUILDDIR) --no-rebuild $(if $(DESTDIR),--destdir $(abspath $(DESTDIR)))
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ]; then echo ldconfig; ldconfig; \
		if [ -d /run/systemd/system ]; then echo systemctl daemon-reload; systemctl daemon-reload; fi; fi

deb: deps
	@scripts/deb.sh build-deb

clean:
	rm -rf build build-asan build-tsan build-fuzz build-deb build-fault-datasync build-fault-dirfsync bin
