# roster: common tasks. `make run` serves roster embedded; `make test` runs the tests.
GO ?= go

.PHONY: run build test test-short vet fmt fuzz bench docker screenshots

run:
	$(GO) run ./cmd/roster serve

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/roster ./cmd/roster

# Runs every test. PostgreSQL, Redis, slapd and Samba tests run when their
# ROSTER_TEST_* variables are set (see README); .ci/run sets them all.
test:
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 20m ./...

test-short:
	$(GO) test -short -count=1 ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

fuzz:
	$(GO) test ./internal/scimfilter -run '^$$' -fuzz FuzzParse -fuzztime 60s
	$(GO) test ./connectors/scim/patch -run '^$$' -fuzz FuzzApply -fuzztime 60s

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./sync/reconcile/ ./queue/

# Screenshots of every screen of the web page, taken by the browser tests in
# a real Chromium on the embedded engine, into docs/screenshots.
screenshots:
	bash .ci/install-browser.sh
	ROSTER_TEST_CHROMIUM=/usr/bin/chromium \
	ROSTER_TEST_AXE=$(CURDIR)/.ci/cache/node_modules/axe-core/axe.min.js \
	ROSTER_SCREENSHOTS=$(CURDIR)/docs/screenshots \
	$(GO) test -count=1 -run 'TestBrowserPage/embedded' ./internal/e2e/

docker:
	docker build -t roster .
