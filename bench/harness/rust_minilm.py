"""all-MiniLM-L6-v2 embeddings from Paradox's own Rust encoder, for machines without torch.

Runs the `encode_bench` example of `crates/paradox-lifecycle` (build it with
`cargo build --release -p paradox-lifecycle --example encode_bench`; model files from
`scripts/fetch-minilm.sh`). The encoder matches sentence-transformers at cosine >= 0.999999
per sentence (`encode_bench --check`), so its vectors stand in for the stock `encode()`.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
BINARY = ROOT / "target" / "release" / "examples" / "encode_bench"
DIM = 384


def available() -> bool:
    """Whether the example binary is built."""
    return BINARY.exists()


def encode(texts: list[str], layers: int = 6) -> tuple[np.ndarray, float]:
    """Unit-length embeddings of `texts` by the first `layers` layers (mean pooled), and
    the encoder's sentences per second in that one pass."""
    if not available():
        raise SystemExit(
            f"{BINARY} is missing: cargo build --release -p paradox-lifecycle --example encode_bench"
        )
    if any("\n" in t or "\r" in t for t in texts):
        raise SystemExit("a text holds a line break: the encoder reads one text per line")
    with tempfile.TemporaryDirectory() as work:
        source, target = Path(work) / "texts.txt", Path(work) / "out.npy"
        source.write_text("\n".join(texts) + "\n", encoding="utf-8")
        run = subprocess.run(
            [str(BINARY), "--texts", str(source), "--n", str(len(texts)), "--reps", "1",
             "--layers", str(layers), "--save", str(target)],
            capture_output=True, text=True,
        )
        if run.returncode != 0:
            raise SystemExit(f"encode_bench failed ({run.returncode}): {run.stderr.strip()}")
        out = np.load(target)
    if out.shape != (len(texts), DIM):
        raise SystemExit(f"encode_bench wrote {out.shape}, expected ({len(texts)}, {DIM})")
    found = re.search(r"rust median: ([0-9.]+)", run.stdout)
    if found is None:
        raise SystemExit(f"encode_bench printed no rate: {run.stdout.strip()[-300:]}")
    rate = float(found.group(1))
    print(f"rust encoder, {layers} layers: {len(texts):,} texts at {rate:,.0f}/s", file=sys.stderr)
    return out, rate
