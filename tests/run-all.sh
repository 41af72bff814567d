#!/usr/bin/env bash
# Runs every test of astropipe: the Rust unit and integration tests (which start the real
# server on 127.0.0.1:0), including those that drive real third-party clients and servers.
#
# It first makes what those tests need (nothing system-wide):
#   - a Python venv (default /var/tmp/astropipe-venv, reused while tests/python/requirements.txt
#     is unchanged) with moto (S3 server), hats + LSDB, pyvo and the ADBC Flight SQL driver;
#   - a second venv (default /var/tmp/astropipe-k8s-venv) with checkov and kubernetes-validate
#     for the Kubernetes manifest checks (kubectl, for kustomize, must be on the PATH);
#   - a moto S3 server on 127.0.0.1 (a free port), stopped when the tests end;
#   - STILTS (the IVOA validators taplint and votlint, and its TAP clients), Debian's package,
#     installed with apt-get when missing and the script may (root).
# The tests find them through ASTROPIPE_TEST_PYTHON and ASTROPIPE_TEST_S3_ENDPOINT; with
# ASTROPIPE_TEST_REQUIRE_EXTERNAL=1 (set here) a test that lacks them fails instead of skipping.
#
#   ./tests/run-all.sh            # all tests
#   ./tests/run-all.sh NAME       # only tests whose name contains NAME
set -euo pipefail
cd "$(dirname "$0")/.."
# The build directory is cargo's own choice (./target unless CARGO_TARGET_DIR is set, as CI
# sets it), so after `cargo run -- demo` the tests reuse that build of the dependencies.
export RUST_BACKTRACE="${RUST_BACKTRACE:-1}"

venv="${ASTROPIPE_VENV:-/var/tmp/astropipe-venv}"
req=tests/python/requirements.txt
stamp="$venv/.requirements.sha256"
want=$(sha256sum "$req" | cut -d' ' -f1)
if [[ ! -x "$venv/bin/python" || "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
    echo "run-all: preparing the test venv in $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --upgrade pip
    "$venv/bin/pip" install -q -r "$req"
    echo "$want" > "$stamp"
fi
export ASTROPIPE_TEST_PYTHON="$venv/bin/python"

# The Kubernetes manifest tools (checkov, kubernetes-validate) in a venv of their own.
k8s_venv="${ASTROPIPE_K8S_VENV:-/var/tmp/astropipe-k8s-venv}"
k8s_req=tests/k8s-requirements.txt
k8s_stamp="$k8s_venv/.requirements.sha256"
k8s_want=$(sha256sum "$k8s_req" | cut -d' ' -f1)
if [[ ! -x "$k8s_venv/bin/python" || "$(cat "$k8s_stamp" 2>/dev/null)" != "$k8s_want" ]]; then
    echo "run-all: preparing the Kubernetes tools venv in $k8s_venv" >&2
    python3 -m venv "$k8s_venv"
    "$k8s_venv/bin/pip" install -q --upgrade pip
    "$k8s_venv/bin/pip" install -q -r "$k8s_req"
    echo "$k8s_want" > "$k8s_stamp"
fi
export ASTROPIPE_TEST_K8S_VENV="$k8s_venv"
if ! command -v kubectl >/dev/null 2>&1; then
    # kustomize comes with kubectl; without it the manifest checks cannot render anything.
    echo "run-all: kubectl is not on the PATH: the Kubernetes manifest test will be skipped" >&2
    export ASTROPIPE_TEST_K8S_SKIP="kubectl is not on the PATH"
fi
# STILTS from Debian (a Java application; taplint and votlint are the IVOA's validators).
if ! command -v stilts >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [[ $(id -u) == 0 ]]; then
    echo "run-all: installing stilts (apt-get)" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq stilts >/dev/null
fi
if command -v stilts >/dev/null 2>&1; then
    export ASTROPIPE_TEST_STILTS="$(command -v stilts)"
fi
export ASTROPIPE_TEST_REQUIRE_EXTERNAL=1

# A moto S3 server on a free loopback port.
port=$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
moto_log="${TMPDIR:-/tmp}/astropipe-moto-$$.log"
"$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$moto_log" 2>&1 &
moto_pid=$!
trap 'kill "$moto_pid" 2>/dev/null || true; wait "$moto_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
    if "$venv/bin/python" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/')" 2>/dev/null; then
        break
    fi
    if ! kill -0 "$moto_pid" 2>/dev/null; then
        echo "run-all: moto_server did not start:" >&2; cat "$moto_log" >&2; exit 1
    fi
    sleep 0.2
done
export ASTROPIPE_TEST_S3_ENDPOINT="http://127.0.0.1:$port"

cargo test --workspace --all-targets -- "$@"
