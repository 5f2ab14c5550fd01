#!/bin/sh
# Installs the Debian packages that building, testing and the demo need, and nothing else:
# `apt-get update` once, then `apt-get install` of whatever is missing. Nothing is downloaded
# from anywhere but Debian's archive.
set -eu

pkgs="gcc make pkg-config libssl-dev libcjson-dev liblmdb-dev zlib1g-dev libbrotli-dev \
libzstd-dev libnghttp2-dev libcurl4-openssl-dev openssl curl python3 python3-requests python3-httpx \
lmdb-utils"
[ "${1:-}" = "--test" ] && pkgs="$pkgs clang libclang-rt-14-dev chromium python3-h2 wget libcurl3-gnutls libgnutls28-dev python3-aiosmtpd"
# test_node runs the real npm SDKs on node; npm installs them (npm ci) from the npm registry.
# Only when missing: a node that came with its own npm must not get Debian's npm beside it.
if [ "${1:-}" = "--test" ]; then
	command -v node >/dev/null 2>&1 || pkgs="$pkgs nodejs"
	command -v npm >/dev/null 2>&1 || pkgs="$pkgs npm"
fi
# make bench: the reference tools it compares against, and the profilers.
[ "${1:-}" = "--bench" ] && pkgs="$pkgs valgrind sqlite3 libsqlite3-dev mitmproxy time"

missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0

echo "tokshim: installing:$missing" >&2
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# shellcheck disable=SC2086
$sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
