# pod-hardener. `make help` lists the targets.
GO      ?= go
BIN     := bin/pod-hardener
PKGS    := ./...
FUZZTIME ?= 30s

DEMO_DIR := .demo
# make image IMAGE=registry.example/pod-hardener:v1 pushes there too.
IMAGE ?=
IMAGE_TAR := bin/pod-hardener-image.tar

.PHONY: help build image test unit e2e e2e-bins lint bench demo demo-down demo-offline run fuzz clean load load-plot load-apiserver load-offline load-audit

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-13s %s\n", $$1, $$2}'

build: ## build bin/pod-hardener
	$(GO) build -o $(BIN) ./cmd/pod-hardener

image: ## pod-hardener's OCI image without Docker (static, uid 65532, no shell) as $(IMAGE_TAR); IMAGE=ref pushes it
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w" -o bin/pod-hardener-static ./cmd/pod-hardener
	$(GO) run ./e2e/cmd/image --binary bin/pod-hardener-static --out $(IMAGE_TAR) $(if $(IMAGE),--push $(IMAGE))

lint: ## gofmt and go vet must be clean
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

test: lint e2e-bins ## lint, then every test: unit, golden, property, fuzz seeds, corpus, e2e against a real kube-apiserver and a real node (kubelet, containerd), and the server under the race detector
	POD_HARDENER_E2E=1 $(GO) test -count=1 -timeout 30m $(PKGS)
	$(GO) test -race -count=1 ./internal/server/

unit: lint ## every test but the e2e suite (no control plane needed)
	$(GO) test -count=1 $$($(GO) list ./... | grep -v /e2e)

e2e: e2e-bins ## the e2e suite alone
	POD_HARDENER_E2E=1 $(GO) test -count=1 -v -timeout 30m ./e2e/

e2e-bins: ## build (once, cached) etcd, kube-apiserver, controller-manager, scheduler, kubelet, kwok, kubectl from the Go module proxy; install the node's containerd, runc, CNI plugins if missing; Debian's prometheus for the dashboard test
	@e2e/install-node-deps.sh
	@e2e/install-prometheus.sh
	@e2e/build-binaries.sh

bench: ## engine and handler benchmarks beside their floors (and kubewebhook's stock path), with ratios
	$(GO) test -run '^$$' -bench . -benchmem -count 3 ./mutate/ ./internal/server/
	BENCH_RATIO=1 $(GO) test -count=1 -run 'TestBenchRatio|TestHandlerBenchRatio' -v ./mutate/ ./internal/server/

fuzz: ## run each fuzz target for FUZZTIME (default 30s): engine, HTTP handler, review objects, YAML reading and splicing, JSON strings
	$(GO) test -run '^$$' -fuzz '^FuzzHarden$$' -fuzztime $(FUZZTIME) ./mutate/
	$(GO) test -run '^$$' -fuzz '^FuzzHandler$$' -fuzztime $(FUZZTIME) ./internal/server/
	$(GO) test -run '^$$' -fuzz '^FuzzReviewObject$$' -fuzztime $(FUZZTIME) ./internal/server/
	$(GO) test -run '^$$' -fuzz '^FuzzReportModeNeverPatchesOrRejects$$' -fuzztime $(FUZZTIME) ./internal/server/
	$(GO) test -run '^$$' -fuzz '^FuzzNodeJSON$$' -fuzztime $(FUZZTIME) ./internal/manifest/
	$(GO) test -run '^$$' -fuzz '^FuzzHardenYAML$$' -fuzztime $(FUZZTIME) ./internal/cli/
	$(GO) test -run '^$$' -fuzz '^FuzzAppendString$$' -fuzztime $(FUZZTIME) ./internal/jsonenc/

demo: build ## a local cluster with pod-hardener and a real node (where the machine can): a plain pod hardened, and what the kubelet makes of it; keeps running
	@e2e/install-node-deps.sh
	@e2e/build-binaries.sh
	@$(GO) run ./e2e/cmd/demo up $(DEMO_DIR)

demo-down: ## stop everything `make demo` started, the node too, and put the host back
	@$(GO) run ./e2e/cmd/demo down $(DEMO_DIR)

run: build ## run the webhook locally with dev certificates and config.yaml
	./$(BIN) serve --dev-certs $(DEMO_DIR)/dev-certs --config config.yaml --listen 127.0.0.1:8443 --metrics-listen 127.0.0.1:9090

demo-offline: build ## harden the workloads in examples/ offline and show before/after with warnings
	@for f in examples/*.yaml; do \
	  echo "=== $$f"; \
	  ./$(BIN) harden -f $$f -o diff --config config.yaml || true; \
	  ./$(BIN) check -f $$f --config config.yaml || true; \
	  echo; \
	done

load: build ## the webhook and a floor server side by side under load, ratios to the floor (about 5 minutes)
	@mkdir -p .load
	$(GO) run ./e2e/cmd/loadgen run --binary $(BIN) --config config.yaml --json .load/run.json --csv .load/run.csv

load-plot: build ## latency percentiles against rate, ours and the floor; redraws docs/latency-vs-rate.png (needs gnuplot)
	$(GO) run ./e2e/cmd/loadgen run --binary $(BIN) --config config.yaml --modes sweep --sweep-rates 250,500,1000,1500,2000,2500,3000 --csv docs/latency-vs-rate.csv
	gnuplot docs/plot-latency.gp

load-apiserver: build ## pod-create latency through a real kube-apiserver: none, floor, floor-patch, ours (about 4 minutes)
	@e2e/build-binaries.sh etcd kube-apiserver
	$(GO) run ./e2e/cmd/loadgen apiserver --binary $(BIN) --config config.yaml

load-offline: build ## CPU of `pod-hardener harden` on 1,000 pods, beside the YAML floor
	$(GO) run ./e2e/cmd/loadgen harden --binary $(BIN) --config config.yaml

load-audit: build ## `pod-hardener audit` over 10,000 pods on a real kube-apiserver, beside a bare paginated list (about 3 minutes)
	@e2e/build-binaries.sh etcd kube-apiserver
	$(GO) run ./e2e/cmd/loadgen audit --binary $(BIN) --config config.yaml

clean: ## remove build output
	rm -rf bin
