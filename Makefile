# eventbus top-level Makefile: drives Meson + Ninja.
#   make          build (release-ish, -O2 -g) into build/, binaries into bin/
#   make run      install deps, build, start eventbusd on ./data, 127.0.0.1:8470
#   make test     install deps, build normal + ASan/UBSan + TSan, run every suite
#                 (TSan: unit suites and the daemon's integration suites)
#   make bench    run the benchmarks under bench/ (not part of make test)
#   make bench-peers  eventbusd beside Redis, NATS JetStream and PostgreSQL
#                 (installs them; PEERS_ARGS="--runs 1 --events 10000" for a quick look)
#   make fuzz     build the libFuzzer targets with clang, run each FUZZ_SECONDS (60)
WERROR  ?= 0
FUZZ_SECONDS ?= 60
BINS    := eventbusd eventbus eventbus-log
MESON_WERROR := $(if $(filter 1,$(WERROR)),-Dwerror=true,-Dwerror=false)

.PHONY: all deps build build-asan build-tsan run test bench bench-peers fuzz clean

all: build

deps:
	@scripts/deps.sh

build: deps
	@[ -f build/build.ninja ] || meson setup build --buildtype=debugoptimized $(MESON_WERROR) >/dev/null
	@meson configure build $(MESON_WERROR) >/dev/null
	@ninja -C build
	@mkdir -p bin
	@for b in $(BINS); do f=$$(find build -maxdepth 3 -type f -perm -u+x -name $$b | head -1); \
		[ -n "$$f" ] && cp -f $$f bin/ || true; done

build-asan: deps
	@[ -f build-asan/build.ninja ] || meson setup build-asan --buildtype=debug \
		-Db_sanitize=address,undefined -Db_lundef=false $(MESON_WERROR) >/dev/null
	@meson configure build-asan $(MESON_WERROR) >/dev/null
	@ninja -C build-asan

build-tsan: deps
	@[ -f build-tsan/build.ninja ] || meson setup build-tsan --buildtype=debugoptimized \
		-Db_sanitize=thread -Db_lundef=false $(MESON_WERROR) >/dev/null
	@meson configure build-tsan $(MESON_WERROR) >/dev/null
	@ninja -C build-tsan

run: build
	@mkdir -p data
	./bin/eventbusd --data ./data --listen 127.0.0.1:8470

test: build build-asan build-tsan
	@python3 tests/run.py

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

clean:
	rm -rf build build-asan build-tsan build-fuzz bin
