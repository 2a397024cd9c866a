#!/usr/bin/env bash
# Installs promtool (from Debian's prometheus package) for the alert-rule
# tests, without installing the package: installing it would start a
# Prometheus daemon. The .deb is unpacked into .cache/promtool (ignored by
# git). Prints the path of the promtool binary; does nothing when one is
# already there or on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."

if command -v promtool >/dev/null 2>&1; then
	command -v promtool
	exit 0
fi
cache="$PWD/.cache/promtool"
bin="$cache/usr/bin/promtool"
if [ ! -x "$bin" ]; then
	mkdir -p "$cache/deb"
	(
		cd "$cache/deb"
		if ! ls prometheus_*.deb >/dev/null 2>&1; then
			apt-get download prometheus >&2 || { apt-get update >&2 && apt-get download prometheus >&2; }
		fi
	)
	dpkg -x "$(ls "$cache"/deb/prometheus_*.deb | head -1)" "$cache"
	rm -rf "$cache/deb"
fi
"$bin" --version >/dev/null 2>&1 || { echo "promtool at $bin does not run" >&2; exit 1; }
echo "$bin"
