# Accepted: run `make help` for the list of targets.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
GO ?= go
ADDR ?= 127.0.0.1:8080
SITE_OUT ?= generated/site
# Where `make run` is reached: the sandbox's inbox and webhook URLs (PUBLIC_URL), its problem `type`
# links (DOCS_BASE/errors#code) and the site's sitemap (SITE_URL) follow ADDR unless given
# (ADDR=:8080 means localhost:8080; on 0.0.0.0 give PUBLIC_URL, the address others use; with port 0
# the sandbox finds its URL itself and problem types keep the default).
RUN_HOST = $(if $(filter :%,$(ADDR)),localhost$(ADDR),$(ADDR))
PUBLIC_URL ?= $(if $(filter %:0,$(ADDR)),,http://$(RUN_HOST))
DOCS_BASE ?= $(PUBLIC_URL)
SITE_URL ?= $(or $(PUBLIC_URL),http://localhost:8080)
# Flags passed to `go test` by `make test`; CI=true adds -count=1 so nothing is served from the test cache.
TESTFLAGS ?= $(if $(CI),-count=1,)
BENCHTIME ?= 1s

.PHONY: help run site site-serve site-golden site-weight generate templ test vet lint check-generated bench fmt clean lighthouse bench-site-memory

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

run: ## Build the site and serve it with the live sandbox on http://127.0.0.1:8080 (ADDR=host:port to change; PUBLIC_URL, DOCS_BASE)
	@echo "make run: building the site into $(SITE_OUT)… (the first run compiles Go and the tools, about 3 minutes on 2 cores; later runs take seconds)"
	@$(MAKE) --no-print-directory site
	@echo "make run: starting the sandbox on $(or $(PUBLIC_URL),$(ADDR))… (compiled on the first run; it logs \"ready at\" with the URL when it listens)"
	$(GO) run ./sandbox serve -addr $(ADDR) -site-dir $(SITE_OUT)$(if $(PUBLIC_URL), -public-url $(PUBLIC_URL))$(if $(DOCS_BASE), -docs-base $(DOCS_BASE))

site: templ ## Build the static site into $(SITE_OUT)
	@if [ -d site ] && ls site/*.go >/dev/null 2>&1; then $(GO) run ./site build -out $(SITE_OUT) -site-url $(SITE_URL); else mkdir -p $(SITE_OUT); fi

site-serve: site ## Serve only the built site (production CSP) on 127.0.0.1:8081
	$(GO) run ./site serve -dir $(SITE_OUT)

site-golden: ## Rewrite the site's golden pages after an intended change
	$(GO) test ./site/internal/build ./site/internal/refpages -run Golden -update

site-weight: ## Report the heaviest page, gzipped, with its CSS and JS
	$(GO) test ./site/internal/build -run 'RealSiteWeight|PageWeight' -v -count=1

generate: templ ## Rewrite everything in generated/ (spec, error catalog) and the *_templ.go files
	$(GO) run ./sandbox openapi -out generated

templ: ## Regenerate *_templ.go from *.templ
	$(GO) tool templ generate -log-level error

# The browser tests check pages with axe-core from tools/axe, when that tool exists.
AXE := $(if $(wildcard tools/axe/package-lock.json),tools/axe/node_modules/.installed)

test: vet lint check-generated lint-spec $(AXE) ## Vet and lint, check generated files, lint the spec, run every test with the race detector, fuzz each parser briefly, audit pages with Lighthouse
	$(GO) test -race $(TESTFLAGS) ./...
	@$(MAKE) --no-print-directory fuzz-short
	@$(MAKE) --no-print-directory lighthouse

vet:
	$(GO) vet ./...

lint: ## staticcheck and golangci-lint (.golangci.yml), both pinned in go.mod
	$(GO) tool staticcheck ./...
	$(GO) tool golangci-lint run ./...

check-generated: ## Fail when committed generated files differ from what the code emits
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(GO) run ./sandbox openapi -out "$$tmp" >/dev/null; \
	for f in "$$tmp"/*; do \
	  diff -u "generated/$$(basename "$$f")" "$$f" >/dev/null || { echo "generated/$$(basename "$$f") is out of date: run 'make generate' and commit"; diff -u "generated/$$(basename "$$f")" "$$f" | head -40; exit 1; }; \
	done
	@$(GO) tool templ generate -log-level error
	@git diff --exit-code --stat -- '*_templ.go' || { echo "*_templ.go files are out of date: run 'make templ' and commit"; exit 1; }

bench: ## Run the benchmarks (figures go in the closing notes and README)
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./...

fmt: ## Format Go and templ sources
	gofmt -w $$(git ls-files '*.go' | grep -v '_templ.go$$')
	$(GO) tool templ fmt .

clean: ## Remove build output
	rm -rf $(SITE_OUT) bin

# ---- Hardening: benchmarks under load, fuzzing, spec lint (issue 7) ----

.PHONY: bench-load bench-scale bench-wire bench-wire-scale bench-wire-footprint fuzz fuzz-short lint-spec

# Every fuzz target, as package:Target.
FUZZ_TARGETS := \
	./sandbox/internal/app:FuzzPostBodies \
	./sandbox/internal/idempotency:FuzzParseKeyHeader \
	./sandbox/internal/idempotency:FuzzFingerprint \
	./sandbox/internal/sse:FuzzLastEventID \
	./sandbox/internal/safedial:FuzzValidateURL \
	./sandbox/internal/simulate:FuzzScenario \
	./sandbox/internal/ratelimit:FuzzHeaders \
	./site/internal/markdown:FuzzRender \
	./site/internal/markdown:FuzzExtractRegion \
	./site/internal/content:FuzzParse
FUZZTIME ?= 30s
# How much `make test` fuzzes each target: a count of inputs, not a duration,
# because Go 1.26's fuzzer can fail a target with "context deadline exceeded"
# when a duration runs out while a worker is busy (go.dev/issue/75804, fixed
# in Go 1.27). FuzzRender runs ~100 times slower than the rest, so it gets
# fewer: about 1-4 s per target, 8 s for FuzzRender.
FUZZTIME_TEST ?= 20000x
FUZZTIME_TEST_RENDER ?= 2000x
SLOW_FUZZ := ./site/internal/markdown:FuzzRender

bench-load: ## Loopback load: accept and poll against a bare net/http handler, 202 latency at 2,000 req/s
	$(GO) test ./sandbox/internal/app -run '^$$' -bench 'Load' -benchtime 20000x -count 1

bench-scale: ## 100,000 jobs in flight and 10,000 event streams in one process
	$(GO) test ./sandbox/internal/app -run '^$$' -bench 'Scale' -benchtime 1x -count 1 -timeout 10m

# The wire benchmarks run the sandbox binary and a bare net/http server as processes, loaded over
# loopback by vegeta (a library, in the test process); PostgreSQL comes from pgtest. WIRE_FLAGS
# passes -wire.round=5s, -wire.rounds=3, -wire.rate=2000 (the open loop's req/s),
# -wire.jobs=100000 or -wire.limits=on (the deployed rate limits; default off) to them.
WIRE_FLAGS ?=

bench-wire: ## Poll and accept over real sockets: the sandbox binary on SQLite and on PostgreSQL vs a bare net/http process, 16 conns and 2,000 req/s (~8 min)
	$(GO) test ./sandbox/internal/app -run '^$$' -bench '^BenchmarkWire(Poll|Accept)$$' -benchtime 1x -count 1 -timeout 60m $(WIRE_FLAGS)

bench-wire-scale: ## 100,000 jobs in flight on SQLite and on PostgreSQL (RSS, disk, kill -9 and restart), two replicas vs one (~10 min)
	$(GO) test ./sandbox/internal/app -run '^$$' -bench '^BenchmarkWire(InFlight|Replicas)$$' -benchtime 1x -count 1 -timeout 120m $(WIRE_FLAGS)

bench-wire-footprint: ## What a visitor costs the sandbox binary (SQLite): RSS and disk per key and per inbox, the largest problem a body can cause (~1 min)
	$(GO) test ./sandbox/internal/app -run '^$$' -bench '^BenchmarkWireFootprint$$' -benchtime 1x -count 1 -timeout 15m

fuzz: ## Run every fuzz target for FUZZTIME each (default 30s; a count such as 3000x also works); crashers land in testdata/fuzz
	@for t in $(FUZZ_TARGETS); do \
	  echo "fuzz $${t#*:} ($${t%%:*}) for $(FUZZTIME)"; \
	  $(GO) test "$${t%%:*}" -run '^$$' -fuzz "^$${t#*:}$$" -fuzztime $(FUZZTIME) || exit 1; \
	done

fuzz-short: ## Every fuzz target for a count of inputs (FUZZTIME_TEST, FUZZTIME_TEST_RENDER; ~70 s with compilation), as `make test` does
	@$(MAKE) --no-print-directory fuzz FUZZTIME=$(FUZZTIME_TEST) FUZZ_TARGETS="$(filter-out $(SLOW_FUZZ),$(FUZZ_TARGETS))"
	@$(MAKE) --no-print-directory fuzz FUZZTIME=$(FUZZTIME_TEST_RENDER) FUZZ_TARGETS="$(SLOW_FUZZ)"

# The Node.js tools are pinned in tools/<name>/package-lock.json and installed with
# npm ci on first use, and again whenever that lock file changes (the stamp is then older).
tools/%/node_modules/.installed: tools/%/package-lock.json
	@command -v npm >/dev/null || { echo "npm (Node.js) is needed to install the pinned tools/$*: install Node.js, or run .ci/run on Debian"; exit 1; }
	npm ci --prefix tools/$* --no-audit --no-fund --ignore-scripts
	@touch $@

SPECS := generated/openapi.json generated/openapi.yaml generated/openapi-3.0.json

lint-spec: tools/spectral/node_modules/.installed tools/redocly/node_modules/.installed ## Lint the generated specs with Spectral (oas + rulesets/async-api.yaml, see .spectral.yaml) and Redocly (redocly.yaml), and test the async ruleset; installs tools/spectral and tools/redocly on first use
	@# All three run even when one fails, so one run shows everything to fix.
	@status=0; \
	echo "spectral lint --ruleset .spectral.yaml $(SPECS)"; \
	tools/spectral/node_modules/.bin/spectral lint --ruleset .spectral.yaml --fail-severity warn $(SPECS) || status=1; \
	echo "node --test rulesets/*.test.mjs"; \
	node --test --test-reporter=spec rulesets/*.test.mjs || status=1; \
	echo "redocly lint $(SPECS)"; \
	REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true tools/redocly/node_modules/.bin/redocly lint --format stylish $(SPECS) || status=1; \
	exit $$status

# ---- Lighthouse (issue 14) ----

# Lighthouse runs in Debian's Chromium (CHROME_PATH to use another); LIGHTHOUSE_FLAGS passes
# tools/lighthouse/run.mjs options, such as --pages faq/,errors/ --presets mobile --out reports/.
CHROME_PATH ?= $(shell command -v chromium || command -v chromium-browser || command -v google-chrome)
LIGHTHOUSE_FLAGS ?=

lighthouse: site tools/lighthouse/node_modules/.installed ## Serve the built site and audit home, a guide, the largest reference page, errors and FAQ with Lighthouse (mobile and desktop); fails below performance 98 or accessibility, best practices, SEO 100 (~2-4 min)
	@test -n "$(CHROME_PATH)" || { echo "lighthouse needs Chromium: apt-get install chromium, or set CHROME_PATH"; exit 1; }
	CHROME_PATH="$(CHROME_PATH)" node tools/lighthouse/run.mjs --serve '$(GO) run ./site serve -addr 127.0.0.1:0 -dir $(SITE_OUT)' --site-dir $(SITE_OUT) $(LIGHTHOUSE_FLAGS)

# ---- Site build memory (issue 14) ----

SITE_BENCH_PAGES ?= 1000

bench-site-memory: ## Peak RSS and time of `site build` on BenchmarkBuild1000Pages' input (SITE_BENCH_PAGES copies of the test site's poll guide) as a process, as one would measure Hugo
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; d=site/internal/build/testdata/site; \
	mkdir -p "$$tmp/content/guides" "$$tmp/rulesets"; \
	printf -- '---\ntitle: Home\n---\nHello.\n' >"$$tmp/content/index.md"; \
	awk 'f {print} /^---$$/ && ++n == 2 {f = 1}' "$$d/content/guides/poll.md" | sed 's/webhooks\.md#verify/p0001.md/g' >"$$tmp/body"; \
	for i in $$(seq 0 $$(($(SITE_BENCH_PAGES) - 1))); do \
	  { printf -- '---\ntitle: Page %d\ndescription: Generated page %d.\norder: %d\n---\n' $$i $$i $$i; cat "$$tmp/body"; } >"$$tmp/content/guides/p$$(printf %04d $$i).md"; \
	done; \
	$(GO) build -o "$$tmp/site" ./site; \
	for run in 1 2 3; do \
	  /usr/bin/time -f "site build, $(SITE_BENCH_PAGES) pages: peak RSS %M KB, %e s wall, %U s user + %S s system" \
	    "$$tmp/site" build -content "$$tmp/content" -generated "$$d/generated" -examples "$$d/examples" -rulesets "$$tmp/rulesets" \
	      -sandbox-url http://127.0.0.1:8080 -out "$$tmp/out" 2>&1 | grep -v '^time=' ; \
	done
