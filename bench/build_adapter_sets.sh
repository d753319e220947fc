#!/usr/bin/env bash
# Builds the training sets of the query adapter (bench/train_adapter.py): doc-comment queries and
# their definitions, made with ../shared/eval/make_queries.py exactly as the eval sets are, from
# published packages that no eval set (public or bench/build_dev_sets.sh) uses:
#   Python (PyPI wheels): jinja2 3.1.6, rich 15.0.0, anyio 4.16.0, starlette 1.10.0,
#     huggingface_hub 0.36.2, jsonschema 4.26.0, pydantic 2.14.4
#   Go (Debian -dev): spf13/pflag, sirupsen/logrus, pkg/errors, google/go-cmp
#   Rust (Debian librust-*-dev): bytes, clap, itertools, memchr
#   Java (Debian openjdk-17-source): java.util (without java.util.concurrent), java.io, java.time
#   TypeScript / JavaScript (npm): zod 4.6.7 src, immer 11.2.14 src, commander 14.0.3, koa 3.3.0
# usage: bench/build_adapter_sets.sh [OUT]   (default: /tmp/adapter-sets; needs apt-get, npm and
#        the eval venv that ../shared/eval/build_public_sets.sh makes)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
EVAL=${EVAL_DIR:-$HERE/../../shared/eval}
OUT=${1:-/tmp/adapter-sets}
V=${EVAL_VENV:-/tmp/cc-eval-venv}
[ -x "$V/bin/python" ] || { echo "run $EVAL/build_public_sets.sh first (it makes $V)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
mk() { rm -rf "${OUT:?}/$2"; "$V/bin/python" "$EVAL/make_queries.py" "$1" "$OUT/$2" --docs "${3:-250}"; }
mkdir -p "$OUT"
for spec in jinja2:jinja2==3.1.6 rich:rich==15.0.0 anyio:anyio==4.16.0 starlette:starlette==1.10.0 \
    huggingface_hub:huggingface_hub==0.36.2 jsonschema:jsonschema==4.26.0 pydantic:pydantic==2.14.4; do
    pkg=${spec%%:*}
    "$V/bin/pip" download -q --no-deps --only-binary :all: "${spec#*:}" -d wheels 2>&1 | grep -vi warning || true
    mkdir -p "py-$pkg" && unzip -q -o wheels/"$pkg"-*.whl "$pkg/*" -d "py-$pkg"
    mk "py-$pkg" "py-$pkg"
done
apt-get download golang-github-spf13-pflag-dev golang-github-sirupsen-logrus-dev golang-github-pkg-errors-dev \
    golang-github-google-go-cmp-dev librust-bytes-dev librust-clap-dev librust-itertools-dev \
    librust-memchr-dev openjdk-17-source >/dev/null 2>&1
for deb in *.deb; do dpkg -x "$deb" x; done
for d in spf13/pflag sirupsen/logrus pkg/errors google/go-cmp; do
    mk "x/usr/share/gocode/src/github.com/$d" "go-${d#*/}"
done
for d in x/usr/share/cargo/registry/*; do mk "$d" "rs-$(basename "$d")"; done
mkdir javau && (cd javau && unzip -q ../x/usr/lib/jvm/openjdk-17/lib/src.zip 'java.base/java/util/*' \
    'java.base/java/io/*' 'java.base/java/time/*' -x 'java.base/java/util/concurrent/*')
mk javau java-util 400
for spec in zod@4.6.7 immer@11.2.14 commander@14.0.3 koa@3.3.0; do
    p=${spec%@*}
    npm pack -q "$spec" >/dev/null 2>&1 && mkdir "npm-$p" && tar xzf "$p"-*.tgz -C "npm-$p"
done
for p in zod immer; do mkdir "ts-$p" && cp -r "npm-$p/package/src" "ts-$p/" && mk "ts-$p" "ts-$p"; done
for p in commander koa; do mk "npm-$p/package" "js-$p"; done
ls "$OUT"
