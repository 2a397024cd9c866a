#!/usr/bin/env bash
# Installs what the web page's browser tests (internal/browser, internal/e2e
# TestBrowser*) drive: Debian's chromium, and axe-core from the npm registry
# into .ci/cache (not committed). Idempotent. Prints the two paths; .ci/run
# exports them as ROSTER_TEST_CHROMIUM and ROSTER_TEST_AXE.
set -euo pipefail
cd "$(dirname "$0")/.."

# Pinned so an axe release with new rules cannot turn CI red on its own.
axe_version=4.10.3

if ! command -v chromium >/dev/null 2>&1; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq || apt-get update
	# fonts-dejavu-core: pages render with real glyphs in screenshots.
	apt-get install -y --no-install-recommends chromium fonts-dejavu-core
fi

axe=.ci/cache/node_modules/axe-core/axe.min.js
if [[ ! -f $axe ]] || ! grep -q "axe v$axe_version" "$axe"; then
	mkdir -p .ci/cache
	npm install --prefix .ci/cache --no-save --no-audit --no-fund --no-package-lock \
		"axe-core@$axe_version" >/dev/null
fi

echo "chromium: $(command -v chromium)"
echo "axe: $(pwd)/$axe"
