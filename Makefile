# realdenoise — `make demo` runs it, `make test` tests everything.
# Cargo's target directory lives outside the clone so rebuilds are
# incremental across clones and CI runs; override with CARGO_TARGET_DIR=...
CARGO_TARGET_DIR ?= $(HOME)/.cache/realdenoise/target
export CARGO_TARGET_DIR
CARGO ?= cargo
BIN := $(CARGO_TARGET_DIR)/release/realdenoise
TRAINED_WEIGHTS := weights/realdenoise.rdnz
UNTRAINED_WEIGHTS := weights/realdenoise-untrained.rdnz

.PHONY: demo test setup build weights clean help

help:
	@echo "make demo    denoise the bundled sample photo with the CLI"
	@echo "make test    run every test"
	@echo "make build   build the library and the CLI (release)"
	@echo "make weights untrained development weights, if no trained ones exist"

setup:
	@bash scripts/setup.sh

build: setup
	$(CARGO) build --release --workspace

# Trained weights ship in weights/; until they exist, tests and the demo use
# clearly named, randomly initialised ones made here.
weights: build
	@if [ -f $(TRAINED_WEIGHTS) ]; then echo "using $(TRAINED_WEIGHTS)"; \
	elif [ -f $(UNTRAINED_WEIGHTS) ]; then echo "using $(UNTRAINED_WEIGHTS) (untrained)"; \
	else $(BIN) init-weights $(UNTRAINED_WEIGHTS); fi

demo: weights
	@mkdir -p out
	$(BIN) denoise assets/sample-noisy.png -o out/sample-denoised.png --force
	@echo "noisy input: assets/sample-noisy.png   result: out/sample-denoised.png"

test: setup
	$(CARGO) test --release --workspace

clean:
	rm -rf out
