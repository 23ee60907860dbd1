#!/usr/bin/env bash
# The whole test suite: formatting, lints (warnings are errors), every test.
# This is the README's test command and what CI runs (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo not found. Install Rust from your package manager or rustup first." >&2
  exit 1
fi
# rustfmt and clippy ship as rustup components; add them when missing.
if command -v rustup >/dev/null 2>&1; then
  rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
  rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
fi

# A CI build is used once: incremental caches would only fill the disk.
if [ "${CI:-}" = "true" ]; then
  export CARGO_INCREMENTAL=0
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy (warnings denied)"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== MiniLM model files for the encoder tests (scripts/fetch-minilm.sh)"
if ! bash scripts/fetch-minilm.sh; then
  if [ "${CI:-}" = "true" ]; then
    echo "error: could not fetch the MiniLM model files" >&2
    exit 1
  fi
  echo "warning: no MiniLM model files; the MiniLM encoder tests will be skipped" >&2
fi
echo "== cargo test"
cargo test --workspace --locked
echo "== python package (scripts/test-python.sh)"
bash scripts/test-python.sh
