#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for SECONDS each (default 600), one after another,
# installing cargo-fuzz first if it is missing. The toolchain is stable: RUSTC_BOOTSTRAP=1
# lets cargo-fuzz use the nightly-only flags it needs. Each run is bounded by `timeout`;
# a crash stops the script with libFuzzer's exit status and its input in fuzz/artifacts/.
#
#   scripts/fuzz.sh            # 10 minutes per target
#   scripts/fuzz.sh 60         # a quick check
set -euo pipefail

seconds="${1:-600}"
targets=(http_reader fetch_target hello_framer proxy_header)

cd "$(dirname "$0")/.."
if ! cargo fuzz --version >/dev/null 2>&1; then
    timeout 1200 cargo install --locked cargo-fuzz
fi
RUSTC_BOOTSTRAP=1 timeout 1800 cargo fuzz build
for target in "${targets[@]}"; do
    echo "== $target: ${seconds}s"
    RUSTC_BOOTSTRAP=1 timeout "$((seconds + 300))" \
        cargo fuzz run "$target" -- -max_total_time="$seconds"
done
