#!/usr/bin/env bash
# IVF with codes and vectors on disk, queried under a RAM budget (a memory cgroup).
#
#   bash bench/disk.sh DATA_PREFIX BUDGET_PERCENT [INDEX_JSON] [NPROBES]
#
# Environment: PARADOX_BIN (default target/release/paradox, built if missing);
# CACHE_BYTES=N queries with the lists read into a list cache of N bytes instead of
# through the mapped index file (`cache_bytes` of the IVF config); BATCH=N sends the
# queries N at a time (`search_batch`, grouped by list); WHOLE_PROCESS=1 puts the whole
# query process in the cgroup from its start, so the budget also bounds the state that
# opening the store builds (the default limits the searches only).
#
# DATA_PREFIX names bench/data files PREFIX.base.npy, PREFIX.queries.npy, PREFIX.gt100.npy
# (made by bench/hnsw.py or bench/ivf.py). The store is built once (no limit) under
# bench/data/disk-<name>; once the store is open, the query phase joins a cgroup-v1 memory
# group limited to BUDGET_PERCENT of the raw vector bytes (page cache included), so the
# limit bounds what searches read and allocate; the per-point state the open builds is
# reported apart (open_anon_bytes). Needs root for the cgroup; without it the query phase
# runs unconfined and says so.
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=$1
percent=$2
index=${3:-'{"kind":"ivf_pq","nlist":4096,"m":32,"nprobe":32,"rerank":8}'}
nprobes=${4:-8,16,32,64}
bin=${PARADOX_BIN:-target/release/paradox}
[ -x "$bin" ] || cargo build --release -p paradox-cli
name=$(basename "$prefix")
store=bench/data/disk-$name
if [ ! -d "$store" ]; then
  "$bin" bench disk --phase build --store "$store" --base "$prefix.base.npy" \
    --queries "$prefix.queries.npy" --index "$index" >&2
fi
# Vector bytes: the .npy file less its (at most a few hundred bytes of) header.
rows_dim=$(stat -c %s "$prefix.base.npy")
budget=$((rows_dim * percent / 100))
query=("$bin" bench disk --phase query --store "$store" --queries "$prefix.queries.npy" \
  --gt "$prefix.gt100.npy" --nprobe "$nprobes")
if [ -n "${CACHE_BYTES:-}" ]; then
  query+=(--cache-bytes "$CACHE_BYTES")
fi
if [ -n "${BATCH:-}" ]; then
  query+=(--batch "$BATCH")
fi
group=/sys/fs/cgroup/memory/paradox-bench-$$
if mkdir "$group" 2>/dev/null; then
  trap 'rmdir "$group" 2>/dev/null || true' EXIT
  echo "$budget" > "$group/memory.limit_in_bytes"
  if [ -n "${WHOLE_PROCESS:-}" ]; then
    echo "bench disk: the whole query process limited to $budget bytes ($percent% of" \
      "$rows_dim vector bytes), opening the store included" >&2
    (echo "$BASHPID" > "$group/tasks" && exec "${query[@]}")
  else
    echo "bench disk: searches limited to $budget bytes ($percent% of $rows_dim vector bytes;" \
      "the state opening the store builds is not counted, see open_anon_bytes)" >&2
    "${query[@]}" --cgroup "$group"
  fi
else
  echo "bench disk: cannot create a memory cgroup; running unconfined" >&2
  "${query[@]}"
fi
