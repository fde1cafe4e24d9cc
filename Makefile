# pod-hardener. `make help` lists the targets.
GO      ?= go
BIN     := bin/pod-hardener
PKGS    := ./...
FUZZTIME ?= 30s

.PHONY: help build test lint bench demo fuzz clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

build: ## build bin/pod-hardener
	$(GO) build -o $(BIN) ./cmd/pod-hardener

lint: ## gofmt and go vet must be clean
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

test: lint ## lint, then every test (unit, golden, property, fuzz seeds, corpus)
	$(GO) test -count=1 $(PKGS)

bench: ## engine benchmarks beside the decode/encode floor, and their ratio
	$(GO) test -run '^$$' -bench . -benchmem -count 3 ./mutate/
	BENCH_RATIO=1 $(GO) test -count=1 -run TestBenchRatio -v ./mutate/

fuzz: ## run each fuzz target for FUZZTIME (default 30s)
	$(GO) test -run '^$$' -fuzz '^FuzzHarden$$' -fuzztime $(FUZZTIME) ./mutate/

demo: build ## harden the workloads in examples/ and show before/after with warnings
	@for f in examples/*.yaml; do \
	  echo "=== $$f"; \
	  ./$(BIN) harden -f $$f -o diff --config config.yaml || true; \
	  ./$(BIN) check -f $$f --config config.yaml || true; \
	  echo; \
	done

clean: ## remove build output
	rm -rf bin
