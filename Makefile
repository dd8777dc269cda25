# edgefleet — build, test and package.
#   make demo   run the end-to-end fleet demo on the embedded defaults
#   make test   run every test (vet, unit, integration, cross under qemu)

# Go 1.27 (simd/archsimd); the go command fetches this toolchain.
export GOTOOLCHAIN ?= go1.27.3
# SIMD kernels (simd/archsimd) need the experiment; builds without it use
# the pure-Go kernels.
export GOEXPERIMENT ?= simd
GO       ?= go
BIN      ?= bin
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
CROSS    := linux/amd64 linux/arm64 linux/arm/v7 linux/riscv64
PKGS     := ./...
FUZZTIME ?= 10m

.PHONY: all build build-tflite cross-tflite tflite-lib test-tflite-arm64 setup tflite-reference test test-unit test-tflite test-cross test-package cross bench bench-api bench-fleet bench-fleet-nats lint fuzz fuzz-short demo package clean

all: build

setup:
	@bash build/setup-deps.sh

build:
	@mkdir -p $(BIN)
	@echo "build: compiling edge-agent, fleet-server, fleetctl into $(BIN)/ (a cold build takes a few minutes)"
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

# The agent with the TensorFlow Lite backend (docs/acceleration.md): cgo,
# -tags tflite. libtensorflowlite_c and delegate plugins are loaded at run
# time, so building needs only a C compiler; CGO_CFLAGS/CGO_LDFLAGS come from
# the environment.
build-tflite:
	@mkdir -p $(BIN)
	CGO_ENABLED=1 $(GO) build -tags tflite -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/edge-agent-tflite ./cmd/edge-agent

# The same for arm64 boards (Coral Dev Board, Raspberry Pi 4/5, Jetson) with
# a cross compiler. TFLITE_LIB_ARM64=/path/libtensorflowlite_c.so (an arm64
# build) is checked and copied next to the binary for packaging.
CC_ARM64         ?= aarch64-linux-gnu-gcc
TFLITE_LIB_ARM64 ?=
cross-tflite:
	@command -v $(CC_ARM64) >/dev/null || { echo "cross-tflite: the arm64 C compiler $(CC_ARM64) is missing: apt-get install gcc-aarch64-linux-gnu (or set CC_ARM64)"; exit 1; }
	@if [ -n "$(TFLITE_LIB_ARM64)" ]; then \
	  file -L "$(TFLITE_LIB_ARM64)" 2>/dev/null | grep -q 'ELF 64-bit.*aarch64' || { echo "cross-tflite: TFLITE_LIB_ARM64=$(TFLITE_LIB_ARM64) is not an arm64 shared library"; exit 1; }; \
	fi
	@mkdir -p $(BIN)/linux-arm64
	CGO_ENABLED=1 CC=$(CC_ARM64) GOOS=linux GOARCH=arm64 $(GO) build -tags tflite -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/linux-arm64/edge-agent-tflite ./cmd/edge-agent
	@if [ -n "$(TFLITE_LIB_ARM64)" ]; then cp "$(TFLITE_LIB_ARM64)" $(BIN)/linux-arm64/libtensorflowlite_c.so; \
	  echo "cross-tflite: $(BIN)/linux-arm64/{edge-agent-tflite,libtensorflowlite_c.so}"; \
	else echo "cross-tflite: $(BIN)/linux-arm64/edge-agent-tflite built; no TFLITE_LIB_ARM64 given, so install libtensorflowlite_c on the board (docs/acceleration.md) or pass it to bundle it"; fi

# Everything a submission must pass.
test: setup lint test-unit test-tflite test-cross test-package

test-unit:
	$(GO) test -count=1 -timeout 20m $(PKGS)
	# The runtime again on its pure-Go kernels (no SIMD), byte for byte.
	$(GO) test -count=1 -timeout 20m -tags purego ./inference/...
	# And on the AVX2 kernels, as on x86 CPUs without AVX-512 (Intel
	# N100/Atom, AMD Zen 2/3): the Go runtime hides AVX-512 from the
	# kernels' feature checks (x86-64 hosts only).
	if [ "$$(uname -m)" = x86_64 ]; then GODEBUG=cpu.avx512f=off $(GO) test -count=1 -timeout 20m ./inference/...; fi

# The TensorFlow Lite backend and the delegate loader (cgo, -tags tflite;
# gcc from make setup) against the real libtensorflowlite_c: EDGE_TFLITE_LIB,
# else the one make tflite-lib (run by make setup) cached. Without a library
# the real-library tests skip and this says so in one line.
test-tflite:
	@lib="$${EDGE_TFLITE_LIB:-$$(bash build/tflite-lib.sh 2>/dev/null || true)}"; \
	if [ -z "$$lib" ]; then echo "test-tflite: no libtensorflowlite_c (make tflite-lib needs npm, or set EDGE_TFLITE_LIB): the real-library tests skip"; \
	else echo "test-tflite: against $$lib"; fi; \
	EDGE_TFLITE_LIB="$$lib" CGO_ENABLED=1 $(GO) test -count=1 -timeout 10m -tags tflite ./agent/engine/... ./hardware/...

# The same tests on arm64 under qemu-user against the arm64 library, and
# bin/linux-arm64/edge-agent-tflite (make cross-tflite) inferring a
# conformance model through TensorFlow Lite (about 3 minutes; needs
# gcc-aarch64-linux-gnu and qemu-user-static, from make setup).
test-tflite-arm64:
	@lib=$$(bash build/tflite-lib.sh arm64) || { echo "test-tflite-arm64: no arm64 libtensorflowlite_c (make tflite-lib needs npm)"; exit 1; }; \
	command -v $(CC_ARM64) >/dev/null && command -v qemu-aarch64-static >/dev/null || { echo "test-tflite-arm64: needs $(CC_ARM64) and qemu-aarch64-static (make setup)"; exit 1; }; \
	set -e; mkdir -p $(BIN); \
	CGO_ENABLED=1 CC=$(CC_ARM64) GOOS=linux GOARCH=arm64 $(GO) test -c -tags tflite -o $(BIN)/engine-arm64.test ./agent/engine/; \
	$(MAKE) --no-print-directory cross-tflite TFLITE_LIB_ARM64="$$lib"; \
	export QEMU_LD_PREFIX=/usr/aarch64-linux-gnu; m=testdata/conformance/mobilenet_v1_0.25_128_quant; \
	qemu-aarch64-static $(BIN)/linux-arm64/edge-agent-tflite infer --backend tflite --tflite-lib $(BIN)/linux-arm64/libtensorflowlite_c.so \
	  --model $$m/model.tflite --input $$m/case_0/input_0.bin --output-dir $(BIN)/arm64-infer; \
	cmp $(BIN)/arm64-infer/output_0.bin agent/engine/testdata/tflite/2.9.0-arm64/builtin/mobilenet_v1_0.25_128_quant/case_0_output_0.bin; \
	echo "test-tflite-arm64: edge-agent-tflite (arm64, qemu) output = TensorFlow Lite 2.9.0 arm64's recorded output"; \
	cd agent/engine && CC=$(CC_ARM64) EDGE_TFLITE_LIB="$$lib" qemu-aarch64-static ../../$(BIN)/engine-arm64.test -test.count=1 -test.timeout 20m

# A prebuilt TensorFlow Lite C library (2.9.0, amd64 + arm64) from npm,
# checked against pinned sha256s and cached in ~/.cache/edgefleet/tflite-lib;
# prints the path of this machine's library.
tflite-lib:
	@bash build/tflite-lib.sh

# Static agent binaries for every supported board.
cross:
	@set -e; for p in $(CROSS); do \
	  os=$${p%%/*}; rest=$${p#*/}; arch=$${rest%%/*}; arm=""; \
	  case $$rest in arm/v7) arm=7;; esac; \
	  out=$(BIN)/edge-agent-$$os-$$arch$${arm:+v$$arm}; \
	  echo "build $$out"; \
	  CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch GOARM=$$arm $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $$out ./cmd/edge-agent; \
	done

# The runtime's conformance and kernel tests on arm64 and armv7 under
# qemu-user-static.
test-cross:
	@bash build/test-cross.sh

bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 20x ./inference/...
	# The GEMM-shaped kernels again on the pure-Go fallback, for comparison.
	$(GO) test -run '^$$' -bench 'Conv2D|FullyConnected' -benchtime 20x -tags purego ./inference/kernels/conv/

# The real TensorFlow Lite reference runner (node, WebAssembly) for
# -update-goldens and bench-reference.sh, installed once into ~/.cache.
tflite-reference:
	@bash build/tflite-reference.sh

bench-api:
	$(GO) test -run '^$$' -bench . -benchtime 200x ./agent/...

# Fleet load benchmark: 1,000 simulated devices (real MQTT sessions, mTLS,
# the agent's protocol), 1 record/10 s each, a canary rollout of a 4 MB model.
bench-fleet: build
	$(BIN)/fleetctl simulate --spawn-server $(BIN)/fleet-server --server-env GOMEMLIMIT=$${SERVER_GOMEMLIMIT:-900MiB} --devices $${DEVICES:-1000} --rate 0.1 --duration $${DURATION:-2m}

# The multi-node path: a throwaway PostgreSQL, one fleet-server nats-node, 2 replicas.
bench-fleet-nats: build
	$(BIN)/fleetctl simulate --spawn-server $(BIN)/fleet-server --spawn-nats --replicas $${REPLICAS:-2} --server-env GOMEMLIMIT=$${SERVER_GOMEMLIMIT:-900MiB} --devices $${DEVICES:-1000} --rate 0.1 --duration $${DURATION:-2m}

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	GOARCH=arm GOARM=7 $(GO) vet ./...   # 32-bit boards: int overflow, alignment

# Long fuzzing of the model reader and of bands (multi-threaded runs of
# fuzzed convolution chains against one thread); fuzz-short: every fuzz
# target of the module for FUZZTIME_SHORT each.
fuzz:
	$(GO) test -run '^$$' -fuzz "^FuzzParse$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./inference/schema/
	$(GO) test -run '^$$' -fuzz "^FuzzLoad$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./inference/
	$(GO) test -run '^$$' -fuzz "^FuzzBands$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./inference/

FUZZTIME_SHORT ?= 10s
fuzz-short:
	@GO='$(GO)' FUZZTIME=$(FUZZTIME_SHORT) bash build/fuzz-all.sh

# DEMO_FLAGS passes flags through, e.g. make demo DEMO_FLAGS=--hold (keep
# everything running and open the console).
DEMO_FLAGS ?=
demo: setup build
	$(GO) run ./cmd/demo --bin $(BIN) $(DEMO_FLAGS)

# edge-agent (every board) and fleet-server + fleetctl (amd64, arm64)
# packages in dist/: .deb, .rpm, .apk.
package: cross
	@bash build/package.sh $(VERSION)

# The .debs of this machine's arch install into a scratch root and their
# systemd units verify.
test-package:
	@GO='$(GO)' BIN='$(BIN)' LDFLAGS='$(LDFLAGS)' bash build/test-package.sh

clean:
	rm -rf $(BIN)
