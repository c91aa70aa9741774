#!/usr/bin/env bash
# The project's test command (README "Two commands"; .ci/run calls it).
# Needs only Rust: protoc comes from the protoc-bin-vendored crate.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# protoc for dependencies' build scripts (pulsar), from the protoc-bin-vendored crate.
. scripts/env.sh
# Apache Pulsar (standalone and pulsar-perf) from Maven Central into .pulsar/:
# the Pulsar driver's tests start it. If the registry refuses an artifact,
# the rest of the suite still runs and those tests say "skipped" with the
# reason, which is repeated at the end.
echo "== installing Apache Pulsar (Maven Central) into .pulsar/"
if ! pulsar_err="$(bash scripts/pulsar-standalone.sh install 2>&1 >/dev/null)"; then
    LG_PULSAR_UNAVAILABLE="$(printf '%s\n' "$pulsar_err" | tail -n1)"
    export LG_PULSAR_UNAVAILABLE
    echo "Apache Pulsar could not be installed: $LG_PULSAR_UNAVAILABLE"
    trap 'echo "NOTE: the tests on Apache Pulsar were SKIPPED: $LG_PULSAR_UNAVAILABLE"' EXIT
fi
# The browser charts' library (uPlot, pinned by web/package-lock.json) into
# web/node_modules: the coordinator's build embeds it (report.html, --ui).
echo "== installing the web chart library (npm) into web/node_modules"
bash scripts/build-web.sh
# The official Python client (the independent cross-check), into .venv.
echo "== installing pulsar-client into .venv"
bash scripts/install-python-tools.sh
# kubernetes-validate (Kubernetes API schemas, offline) for the deploy/k8s
# manifest tests (coordinator/tests/deploy.rs).
echo "== installing kubernetes-validate into .venv"
bash scripts/install-k8s-validate.sh

# Debian's Chromium renders report.html in a test (coordinator/tests/report.rs);
# installed when missing and we are root with apt. If it cannot be had, that
# one test says "skipped" instead of failing.
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing chromium (Debian) for the HTML report test"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) ||
        echo "chromium could not be installed; the HTML render test will be skipped"
fi

echo "== fmt"
cargo fmt --all -- --check
echo "== clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== build (every binary: the end-to-end tests start real agent processes)"
cargo build --workspace --bins --locked
echo "== tests"
cargo test --workspace --locked "$@"
