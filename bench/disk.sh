#!/usr/bin/env bash
# IVF with codes and vectors on disk, queried under a RAM budget (a memory cgroup).
#
#   bash bench/disk.sh DATA_PREFIX BUDGET_PERCENT [INDEX_JSON] [NPROBES]
#
# DATA_PREFIX names bench/data files PREFIX.base.npy, PREFIX.queries.npy, PREFIX.gt100.npy
# (made by bench/hnsw.py or bench/ivf.py). The store is built once (no limit) under
# bench/data/disk-<name>; the query phase runs in a cgroup-v1 memory group limited to
# BUDGET_PERCENT of the raw vector bytes (page cache included). Needs root for the cgroup;
# without it the query phase runs unconfined and says so.
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=$1
percent=$2
index=${3:-'{"kind":"ivf_pq","nlist":4096,"m":32,"nprobe":32,"rerank":8}'}
nprobes=${4:-8,16,32,64}
bin=target/release/paradox
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
group=/sys/fs/cgroup/memory/paradox-bench-$$
if mkdir "$group" 2>/dev/null; then
  trap 'rmdir "$group" 2>/dev/null || true' EXIT
  echo "$budget" > "$group/memory.limit_in_bytes"
  echo "bench disk: query phase limited to $budget bytes ($percent% of $rows_dim vector bytes)" >&2
  sh -c 'echo $$ > "$0/cgroup.procs"; shift; exec "$@"' "$group" -- "${query[@]}"
else
  echo "bench disk: cannot create a memory cgroup; running unconfined" >&2
  "${query[@]}"
fi
