#!/usr/bin/env bash
# Server benchmark: Paradox (gRPC and REST) against Chroma's server on the same machine, in
# the same run, on the real MiniLM set (bench/hnsw.py --dataset minilm makes it), and an
# optional mixed soak. Not part of CI.
#
#   bash bench/server.sh                      # QPS, p50/p95/p99 and recall at c = 1, 8, 64
#   bash bench/server.sh --soak 600           # and a 10-minute soak (90% search, 10% upsert, c=32)
#   bash bench/server.sh --seconds 5 --quick  # smoke test of the plumbing (10k rows, short runs)
#   bash bench/server.sh --soak 600 --soak-only  # the soak alone (no Chroma, no query runs)
#
# PARADOX_* variables reach `paradox serve` (e.g. PARADOX_SEAL_BYTES for the soak's
# growing segment; see docs/server.md); PARADOX_BIN=path uses that binary instead of
# building one; SOAK_ARGS adds flags to `paradox bench server` in --soak-only runs (e.g.
# "--soak-sample-seconds 15").
#
# What it does:
#   1. builds `paradox` (release) and a venv with the pinned chromadb (bench/.venv-chroma);
#   2. imports the base vectors into a fresh Paradox data directory (HNSW, M=16,
#      efConstruction=200, cosine), indexes built before the clock starts, then `paradox serve`;
#   3. starts `chroma run` on a fresh directory and loads the same rows (cosine HNSW, M=16,
#      efConstruction=200), then raises Chroma's ef_search over a grid, restarting Chroma after
#      each change, until its recall@10 reaches the target (0.95);
#   4. `paradox bench server` drives all three targets with the same queries from one process
#      (Paradox's ef is tuned per request to the same target recall) and prints the JSON,
#      which is also written to bench/results/server.json.
set -euo pipefail

bench_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$bench_dir/.." && pwd)"
chroma_version="1.5.9"
dataset="minilm-wn30-s0-n110000-q1000"
seconds=10
soak=""
quick=0
soak_only=0
target_recall=0.95
concurrency="1,8,64"
rest_port=18333
grpc_port=18334
chroma_port=18000

while [[ $# -gt 0 ]]; do
  case "$1" in
    --soak) soak="$2"; shift 2 ;;
    --seconds) seconds="$2"; shift 2 ;;
    --concurrency) concurrency="$2"; shift 2 ;;
    --target-recall) target_recall="$2"; shift 2 ;;
    --dataset) dataset="$2"; shift 2 ;;
    --quick) quick=1; shift ;;
    --soak-only) soak_only=1; shift ;;
    -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
    *) echo "server.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
if [[ $quick -eq 1 ]]; then
  dataset="minilm-wn30-s0-n10000-q200"
fi

data="$bench_dir/data"
base="$data/$dataset.base.npy"
queries="$data/$dataset.queries.npy"
gt="$data/$dataset.gt100.npy"
for f in "$base" "$queries" "$gt"; do
  if [[ ! -f "$f" ]]; then
    echo "server.sh: $f is missing; make it with: bench/.venv/bin/python bench/hnsw.py --dataset minilm" >&2
    exit 1
  fi
done

if [[ -n "${PARADOX_BIN:-}" ]]; then
  paradox="$PARADOX_BIN"  # a binary built before (e.g. of another revision)
else
  echo "== building paradox (release)"
  (cd "$root" && cargo build --release --quiet -p paradox-cli)
  paradox="$root/target/release/paradox"
fi

if [[ $soak_only -eq 1 && -z "$soak" ]]; then
  echo "server.sh: --soak-only needs --soak SECONDS" >&2
  exit 2
fi

venv="$bench_dir/.venv-chroma"
installed="$("$venv/bin/python" -m pip show chromadb 2>/dev/null || true)"
if [[ $soak_only -eq 0 ]] && { [[ ! -x "$venv/bin/chroma" ]] || [[ "$installed" != *"Version: $chroma_version"* ]]; }; then
  echo "== installing chromadb==$chroma_version into $venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  "$venv/bin/python" -m pip install --quiet "chromadb==$chroma_version"
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/paradox-server-bench.XXXXXX")"
paradox_pid=""
chroma_pid=""
cleanup() {
  [[ -n "$paradox_pid" ]] && kill "$paradox_pid" 2>/dev/null || true
  [[ -n "$chroma_pid" ]] && kill "$chroma_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

wait_for() { # url, what
  for _ in $(seq 1 600); do
    if curl -fsS -o /dev/null "$1" 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  echo "server.sh: $2 did not come up at $1" >&2
  exit 1
}

start_chroma() {
  "$venv/bin/chroma" run --path "$work/chroma" --host 127.0.0.1 --port "$chroma_port" \
    > "$work/chroma.log" 2>&1 &
  chroma_pid=$!
  wait_for "http://127.0.0.1:$chroma_port/api/v2/heartbeat" "chroma"
}

stop_chroma() {
  kill "$chroma_pid" 2>/dev/null || true
  wait "$chroma_pid" 2>/dev/null || true
  chroma_pid=""
}

echo "== paradox: importing $(basename "$base")"
"$paradox" collection create --name minilm --data-dir "$work/paradox" --dim 384 --metric cosine \
  --index '{"kind":"hnsw","m":16,"ef_construction":200}' > /dev/null
"$paradox" import --data-dir "$work/paradox" --collection minilm "$base" > /dev/null
"$paradox" serve --data-dir "$work/paradox" --rest-addr "127.0.0.1:$rest_port" \
  --grpc-addr "127.0.0.1:$grpc_port" > "$work/paradox.log" 2>&1 &
paradox_pid=$!
wait_for "http://127.0.0.1:$rest_port/readyz" "paradox serve"

common=(--collection minilm --queries "$queries" --gt "$gt" --base "$base")

if [[ $soak_only -eq 1 ]]; then
  mkdir -p "$bench_dir/results"
  out="$bench_dir/results/server-soak.json"
  echo "== soaking paradox alone for $soak s"
  "$paradox" bench server --grpc "http://127.0.0.1:$grpc_port" "${common[@]}" ${SOAK_ARGS:-} \
    --target-recall "$target_recall" --no-runs --soak-seconds "$soak" \
    --server-pid "$paradox_pid" | tee "$out"
  echo "== written to $out"
  exit 0
fi

echo "== chroma: loading the same rows"
start_chroma
"$paradox" bench server --chroma "http://127.0.0.1:$chroma_port" "${common[@]}" \
  --load-chroma --chroma-ef 16 --recall-only > "$work/load.json"
chroma_ef=""
for ef in 16 24 32 48 64 96 128 192 256 384 512; do
  stop_chroma
  start_chroma
  "$paradox" bench server --chroma "http://127.0.0.1:$chroma_port" "${common[@]}" \
    --chroma-ef "$ef" --recall-only > /dev/null
  # Chroma applies ef_search from a fresh process: restart, then measure recall.
  stop_chroma
  start_chroma
  recall=$("$paradox" bench server --chroma "http://127.0.0.1:$chroma_port" "${common[@]}" \
    --recall-only | python3 -c 'import json,sys; print(json.load(sys.stdin)["recall_at_10"]["chroma"])')
  echo "   chroma ef_search=$ef: recall@10 $recall"
  if python3 -c "import sys; sys.exit(0 if $recall >= $target_recall else 1)"; then
    chroma_ef=$ef
    break
  fi
done
if [[ -z "$chroma_ef" ]]; then
  echo "server.sh: Chroma never reached recall@10 $target_recall" >&2
  exit 1
fi

echo "== measuring (chroma ef_search=$chroma_ef)"
mkdir -p "$bench_dir/results"
out="$bench_dir/results/server.json"
extra=()
if [[ -n "$soak" ]]; then
  extra+=(--soak-seconds "$soak")
fi
"$paradox" bench server --grpc "http://127.0.0.1:$grpc_port" --rest "http://127.0.0.1:$rest_port" \
  --chroma "http://127.0.0.1:$chroma_port" "${common[@]}" --chroma-ef "$chroma_ef" \
  --target-recall "$target_recall" --concurrency "$concurrency" --seconds "$seconds" \
  --server-pid "$paradox_pid" --chroma-pid "$chroma_pid" "${extra[@]}" | tee "$out"
echo "== written to $out"
