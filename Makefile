# realdenoise — `make demo` runs it, `make test` tests everything.
# Cargo's target directory lives outside the clone so rebuilds are
# incremental across clones and CI runs; override with CARGO_TARGET_DIR=...
CARGO_TARGET_DIR ?= $(HOME)/.cache/realdenoise/target
export CARGO_TARGET_DIR
CARGO ?= cargo
BIN := $(CARGO_TARGET_DIR)/release/realdenoise
TRAINED_WEIGHTS := weights/realdenoise.rdnz
UNTRAINED_WEIGHTS := weights/realdenoise-untrained.rdnz

.PHONY: demo test test-browser setup build weights pkg clean help

help:
	@echo "make demo    denoise the bundled sample photo with the CLI"
	@echo "make test    run every test"
	@echo "make build   build the library and the CLI (release)"
	@echo "make weights untrained development weights, if no trained ones exist"
	@echo "make pkg     build the npm package into pkg/"

setup:
	@bash scripts/setup.sh

build: setup
	$(CARGO) build --release --workspace

# Trained weights ship in weights/; until they exist, tests and the demo use
# clearly named, randomly initialised ones made here.
weights: build
	@if [ -f $(TRAINED_WEIGHTS) ]; then echo "using $(TRAINED_WEIGHTS)"; \
	elif [ -f $(UNTRAINED_WEIGHTS) ]; then echo "using $(UNTRAINED_WEIGHTS) (untrained)"; \
	else mkdir -p weights && $(BIN) init-weights $(UNTRAINED_WEIGHTS); fi

demo: weights
	@mkdir -p out
	$(BIN) denoise assets/sample-noisy.png -o out/sample-denoised.png --force
	@echo "noisy input: assets/sample-noisy.png   result: out/sample-denoised.png"

test: setup
	$(CARGO) test --release --workspace

# The npm package: wasm32 build, wasm-bindgen at the crate's version,
# wasm-opt from npm binaryen, then the JavaScript wrapper and the weights.
WASM := $(CARGO_TARGET_DIR)/wasm32-unknown-unknown/wasm-release/realdenoise.wasm
pkg: weights
	@bash scripts/setup-wasm.sh
	$(CARGO) build --profile wasm-release --target wasm32-unknown-unknown -p realdenoise --lib
	rm -rf pkg/*.js pkg/*.ts pkg/*.wasm pkg/*.rdnz
	mkdir -p pkg
	wasm-bindgen --target web --out-dir pkg --out-name realdenoise $(WASM)
	tools/node_modules/.bin/wasm-opt -O3 --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext --enable-mutable-globals pkg/realdenoise_bg.wasm -o pkg/realdenoise_bg.wasm
	cp src/web/js/index.js src/web/js/worker.js src/web/js/index.d.ts src/web/js/package.json src/web/js/README.md pkg/
	if [ -f $(TRAINED_WEIGHTS) ]; then cp $(TRAINED_WEIGHTS) pkg/realdenoise.rdnz; else cp $(UNTRAINED_WEIGHTS) pkg/realdenoise.rdnz; fi
	@ls -l pkg; gzip -9 -c pkg/realdenoise_bg.wasm | wc -c | awk '{printf "realdenoise_bg.wasm gzip: %.2f MB\n", $$1/1e6}'

# The npm package in headless Debian Chromium (WebGPU via SwiftShader, and CPU).
test-browser: pkg
	@dpkg -s chromium >/dev/null 2>&1 || { sudo_cmd=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); $$sudo_cmd apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo_cmd apt-get install -y -qq chromium >/dev/null; }
	npm --prefix tests/browser install --no-audit --no-fund --silent
	cd tests/browser && node --test --test-concurrency=1 ./package.test.mjs

clean:
	rm -rf out pkg/*
