#!/usr/bin/env bash
# Builds the development eval sets beyond the two public ones: other languages and repositories,
# so a ranking change is judged on more than click and express (the issue warns of unpublished
# sets in Go, Java, Rust and TypeScript). Each set comes from a published package, made with
# ../shared/eval/make_queries.py exactly as the public sets are:
#   requests 2.32.3 (Python, PyPI sdist)      cobra 1.6.1, gorilla/mux 1.8.0 (Go, Debian -dev)
#   regex 1.7.1 (Rust, Debian librust-*-dev)  rxjs 7.8.1 src/ (TypeScript, npm)
#   java.util.concurrent + java.net.http of OpenJDK 17 (Java, Debian openjdk-17-source)
# usage: bench/build_dev_sets.sh [OUT]   (default: /tmp/sets; needs apt-get, npm, and the eval venv
#        that ../shared/eval/build_public_sets.sh makes)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
EVAL=${EVAL_DIR:-$HERE/../../shared/eval}
OUT=${1:-/tmp/sets}
V=${EVAL_VENV:-/tmp/cc-eval-venv}
[ -x "$V/bin/python" ] || { echo "run $EVAL/build_public_sets.sh first (it makes $V)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
apt-get download golang-github-spf13-cobra-dev golang-github-gorilla-mux-dev librust-regex-dev \
    openjdk-17-source >/dev/null 2>&1
for deb in *.deb; do dpkg -x "$deb" x; done
npm pack -q rxjs@7.8.1 >/dev/null 2>&1 && mkdir rxjs && tar xzf rxjs-7.8.1.tgz -C rxjs
mkdir -p rxjs-src && cp -r rxjs/package/src rxjs-src/
"$V/bin/pip" download -q --no-deps --no-binary :all: requests==2.32.3 -d . 2>&1 | grep -vi warning || true
tar xzf requests-2.32.3.tar.gz
mkdir jdk && (cd jdk && unzip -q ../x/usr/lib/jvm/openjdk-17/lib/src.zip \
    'java.base/java/util/concurrent/*' 'java.net.http/*')
mk() { rm -rf "${OUT:?}/$2"; "$V/bin/python" "$EVAL/make_queries.py" "$1" "$OUT/$2" --docs 150; }
mkdir -p "$OUT"
mk requests-2.32.3/src requests
mk x/usr/share/gocode/src/github.com/spf13/cobra cobra
mk x/usr/share/gocode/src/github.com/gorilla/mux mux
mk x/usr/share/cargo/registry/regex-1.7.1 regex
mk jdk jdk
mk rxjs-src rxjs
