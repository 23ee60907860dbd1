#!/usr/bin/env bash
# The Python package's tests: builds `paradoxlf` (import `paradox`) from this checkout
# into a private virtual environment (.venv-py, git-ignored) and runs pytest over
# python/tests. Called at the end of scripts/test.sh; runs alone too.
#
# The extension (engine, paradox-mind and the server behind `paradox.serve` and
# `paradox-node`) is built optimised like the Rust tests (opt-level 2) into the
# workspace's target/ directory. maturin resolves features for paradox-py alone, so
# crates whose features differ from the whole-workspace `cargo test` build (serde and
# everything above it) are compiled again here; crates with equal features are shared.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
VENV=.venv-py
if ! command -v "$PYTHON" >/dev/null 2>&1; then
  echo "error: $PYTHON not found. Install Python 3.9 or newer (or set PYTHON=...)." >&2
  exit 1
fi
if [ ! -x "$VENV/bin/python" ]; then
  echo "== creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c "import maturin, numpy, pytest" >/dev/null 2>&1; then
  echo "== installing maturin, numpy, pytest into $VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  "$VENV/bin/python" -m pip install --quiet "maturin>=1.5,<2" numpy pytest
fi

echo "== building the paradox extension (maturin develop)"
CARGO_PROFILE_DEV_OPT_LEVEL=2 VIRTUAL_ENV="$PWD/$VENV" "$VENV/bin/maturin" develop --locked

echo "== pytest python/tests"
"$VENV/bin/python" -m pytest -q python/tests
