#!/usr/bin/env bash
# A real Kubernetes API server for tests/k8s, called by .ci/run and usable by hand:
#
#     eval "$(bash .ci/k8s.sh)"
#
# 1. finds shared/tools/k8s-apiserver (beside the checkout, as CI lays it out, or
#    $TRADECHAOS_K8S_TOOLS),
# 2. builds kube-apiserver 1.20.2 + etcd from Debian packages with its build.sh, cached in
#    $K8S_APISERVER_DIR (default $HOME/.cache/tradechaos/k8s-apiserver): about 3.3 min cold
#    on 2 cores, instant warm,
# 3. starts and stops it once (up.sh / down.sh on free ports in a temporary folder) to
#    prove it runs, then prints `export` lines for the tests: TRADECHAOS_K8S_TOOLS and
#    K8S_APISERVER_DIR. The tests' fixture (tests/k8s/k8s_apiserver.py) starts its own
#    server per session from the same cache, so nothing is left running here.
#
# Logs go to stderr; only the export lines go to stdout. In CI (CI=true) a failure is
# fatal (tests/k8s must not skip silently); by hand it prints why and exits 0.
set -uo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)
say() { echo "== k8s.sh [$(( $(date +%s) - t0 ))s] $*" >&2; }
fail() {
  say "FAILED: $*"
  if [ "${CI:-}" = "true" ]; then exit 1; fi
  say "not in CI: continuing without an API server (tests/k8s that need one will skip)"
  exit 0
}

tools=${TRADECHAOS_K8S_TOOLS:-}
for candidate in "$tools" ../shared/tools/k8s-apiserver ../../shared/tools/k8s-apiserver; do
  if [ -n "$candidate" ] && [ -x "$candidate/build.sh" ]; then tools=$(cd "$candidate" && pwd); break; fi
done
[ -n "$tools" ] && [ -x "$tools/build.sh" ] || fail "no shared/tools/k8s-apiserver beside the checkout"
cache=${K8S_APISERVER_DIR:-$HOME/.cache/tradechaos/k8s-apiserver}

say "building (cached in $cache)"
bin=$(K8S_APISERVER_DIR="$cache" timeout 1500 bash "$tools/build.sh" "$cache" | tail -1) \
  || fail "build.sh failed"
[ -x "$bin/kube-apiserver" ] || fail "build.sh gave no kube-apiserver in $bin"
say "built: $("$bin/kube-apiserver" --version)"

probe=$(mktemp -d --tmpdir tradechaos-k8s-probe.XXXXXX)
trap 'bash "$tools/down.sh" "$probe" >/dev/null 2>&1; rm -rf "$probe"' EXIT
ln -s "$bin" "$probe/bin"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
etcd_port=$(free_port); api_port=$(free_port)
while [ "$api_port" -ge "$etcd_port" ] && [ "$api_port" -le $((etcd_port + 2)) ]; do api_port=$(free_port); done
ETCD_PORT=$etcd_port APISERVER_PORT=$api_port timeout 120 bash "$tools/up.sh" "$probe" >/dev/null 2>"$probe/up.err" \
  || { tail -5 "$probe/up.err" >&2; tail -20 "$probe/runtime/apiserver.log" >&2 2>/dev/null; fail "up.sh failed"; }
say "API server answered on 127.0.0.1:$api_port; stopping the probe"

echo "export TRADECHAOS_K8S_TOOLS=$tools"
echo "export K8S_APISERVER_DIR=$cache"
say "done"
