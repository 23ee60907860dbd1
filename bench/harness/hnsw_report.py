"""Reading HNSW curves: QPS at a target recall, the ratios the issue asks for, tables, chart.

QPS at a recall target is read off each engine's curve the way ann-benchmarks reads Pareto
frontiers: keep the points no other point beats on both recall and QPS, then interpolate
linearly in (recall, log QPS) between the two frontier points either side of the target. A
curve whose best recall is below the target never reaches it (no figure: the ratio is
undefined, and the table says so); a curve whose *lowest* recall is already above the target
gives the QPS of that point, marked as a lower bound (a smaller ef might be faster still).
"""

from __future__ import annotations

import math

from harness.report import SummaryRow

RECALL_TARGETS = (0.95, 0.99)
# (peer, target ratio of paradox QPS / peer QPS at equal recall@10, single thread)
QPS_TARGETS = {"hnswlib": 1.2, "qdrant-edge": 1.5}
# Time from the first vector handed over to all of them indexed, ours through the engine
# over qdrant-edge's upserts + optimize(): less is the target.
INGEST_TARGET_VS_QDRANT = 1.0
# The engine's ingest figures in a paradox report, and how each was configured.
INGEST_LAYOUTS = (
    ("engine_ingest", "through the engine, one segment"),
    ("engine_ingest_default_layout", "engine defaults: 32 MiB seals, merges"),
)
BUILD_TARGET_VS_HNSWLIB = 1.0  # paradox build seconds / hnswlib's, same threads: <= 1.0
MEMORY_TARGET_VS_HNSWLIB = 1.1  # paradox bytes per vector / hnswlib's: <= 1.1
# paradox-sq8 (int8 traversal + exact re-rank): QPS / hnswlib's f32 QPS at recall@10 0.95
# (single thread) >= 2.0, with traversal bytes per vector <= 0.35x hnswlib's f32 rows.
SQ8_QPS_TARGET_VS_HNSWLIB = 2.0
SQ8_TRAVERSAL_TARGET_VS_F32 = 0.35


def qps_at_recall(curve: list[dict], target: float, qps_key: str, recall_key="recall_at_10"):
    """(qps, how) where how is 'interpolated', 'lower bound' or 'not reached' (qps None)."""
    points = [(p[recall_key], p[qps_key]) for p in curve if p.get(qps_key) and recall_key in p]
    if not points:
        return None, "no data"
    # Pareto frontier: sorted by recall descending, keep a point if it is faster than every
    # point with higher recall.
    frontier, best_qps = [], -math.inf
    for recall, qps in sorted(points, key=lambda rq: (-rq[0], -rq[1])):
        if qps > best_qps:
            frontier.append((recall, qps))
            best_qps = qps
    frontier.reverse()  # recall ascending, QPS descending
    if frontier[-1][0] < target:
        return None, f"not reached (max recall {frontier[-1][0]:.4f})"
    if frontier[0][0] >= target:
        return frontier[0][1], "lower bound"
    for (r0, q0), (r1, q1) in zip(frontier, frontier[1:]):
        if r0 < target <= r1:
            t = (target - r0) / (r1 - r0)
            return math.exp(math.log(q0) + t * (math.log(q1) - math.log(q0))), "interpolated"
    return None, "not reached"


def merge_rounds(rounds: list[dict]) -> dict:
    """One engine's figures over several rounds of the whole engine sequence (a shared
    machine's load comes and goes): the fastest build, and for each ef the single-thread
    point (recall, QPS, latencies, all from one round) with the highest QPS, and the highest
    all-threads QPS. Memory, disk and open figures are the first round's."""
    if len(rounds) == 1:
        return rounds[0]
    merged = dict(rounds[0])
    merged["build_seconds"] = min(r["build_seconds"] for r in rounds)
    merged["build_seconds_per_round"] = [r["build_seconds"] for r in rounds]
    curve = []
    for i, point in enumerate(rounds[0]["curve"]):
        candidates = [r["curve"][i] for r in rounds]
        if any(c["ef"] != point["ef"] for c in candidates):
            raise ValueError("rounds traced different ef grids")
        best = dict(max(candidates, key=lambda c: c["qps_1thread"]))
        best["qps_all_threads"] = max(c["qps_all_threads"] for c in candidates)
        best["qps_1thread_per_round"] = [c["qps_1thread"] for c in candidates]
        best["qps_all_threads_per_round"] = [c["qps_all_threads"] for c in candidates]
        best["recall_at_10_per_round"] = [c.get("recall_at_10") for c in candidates]
        curve.append(best)
    merged["curve"] = curve
    for key, _ in INGEST_LAYOUTS:
        ingests = [r[key] for r in rounds if key in r]
        if ingests:
            merged[key] = min(ingests, key=lambda i: i["insert_to_indexed_seconds"])
    merged["rounds"] = len(rounds)
    return merged


def summary_rows(results: dict[str, dict]) -> list[SummaryRow]:
    """The issue's ratios (paradox over each peer) as table rows; targets where it sets one."""
    rows: list[SummaryRow] = []
    paradox = results.get("paradox")
    if paradox is None:
        return rows
    peers = [name for name in results if not name.startswith("paradox")]
    for threads_key, label in (("qps_1thread", "1 thread"), ("qps_all_threads", "all threads")):
        for target_recall in RECALL_TARGETS:
            ours, our_how = qps_at_recall(paradox["curve"], target_recall, threads_key)
            for peer in peers:
                theirs, their_how = qps_at_recall(
                    results[peer]["curve"], target_recall, threads_key
                )
                goal = QPS_TARGETS.get(peer) if threads_key == "qps_1thread" else None
                rows.append(
                    _ratio_row(
                        f"QPS @ recall@10={target_recall} {label} vs {peer}",
                        ours,
                        theirs,
                        goal,
                        higher_is_better=True,
                        fmt=lambda v: f"{v:,.0f} q/s",
                        check=_how(our_how, their_how),
                    )
                )
    for peer in peers:
        if peer == "hnswlib":
            continue
        info = results[peer].get("info", {})
        rows.append(
            _ratio_row(
                f"build seconds vs {peer} ({paradox['build_threads']} threads each)",
                paradox["build_seconds"],
                results[peer]["build_seconds"],
                None,
                higher_is_better=False,
                fmt=lambda v: f"{v:,.1f} s",
                check=(
                    f"peer: optimize() only; first upsert to indexed "
                    f"{info['insert_to_indexed_seconds']:,.1f} s"
                    if "insert_to_indexed_seconds" in info
                    else ""
                ),
            )
        )
        for key, layout in INGEST_LAYOUTS:
            ingest = paradox.get(key)
            if ingest is None or "insert_to_indexed_seconds" not in info:
                continue
            rows.append(
                _ratio_row(
                    f"first insert to indexed vs {peer} ({layout})",
                    ingest["insert_to_indexed_seconds"],
                    info["insert_to_indexed_seconds"],
                    INGEST_TARGET_VS_QDRANT,
                    higher_is_better=False,
                    fmt=lambda v: f"{v:,.1f} s",
                    check=(
                        f"ours: upserts {ingest['upsert_seconds']:.1f} s, seal "
                        f"{ingest['seal_seconds']:.1f} s, index {ingest['index_seconds']:.1f} s, "
                        f"{ingest['sealed_segments']} sealed segment(s) at the end"
                    ),
                )
            )
    hnswlib = results.get("hnswlib")
    sq8 = results.get("paradox-sq8")
    if hnswlib is not None and sq8 is not None:
        rows.extend(_sq8_rows(sq8, hnswlib))
    if hnswlib is not None:
        rows.append(
            _ratio_row(
                f"build seconds vs hnswlib ({paradox['build_threads']} threads each)",
                paradox["build_seconds"],
                hnswlib["build_seconds"],
                BUILD_TARGET_VS_HNSWLIB,
                higher_is_better=False,
                fmt=lambda v: f"{v:,.1f} s",
                check="",
            )
        )
        rows.append(
            _ratio_row(
                "memory bytes/vector vs hnswlib (RSS delta around build)",
                memory_per_vector(paradox)["rss"],
                memory_per_vector(hnswlib)["rss"],
                MEMORY_TARGET_VS_HNSWLIB,
                higher_is_better=False,
                fmt=lambda v: f"{v:,.0f} B",
                check="paradox: RSS delta + its f32 rows (held outside the index)",
            )
        )
        rows.append(
            _ratio_row(
                "memory bytes/vector vs hnswlib (structure: index + rows / file)",
                memory_per_vector(paradox)["structure"],
                memory_per_vector(hnswlib)["structure"],
                MEMORY_TARGET_VS_HNSWLIB,
                higher_is_better=False,
                fmt=lambda v: f"{v:,.0f} B",
                check="paradox: memory_bytes()+n*d*4; hnswlib: saved file",
            )
        )
    return rows


def _sq8_rows(sq8: dict, hnswlib: dict) -> list[SummaryRow]:
    """paradox-sq8 against hnswlib's f32 graph: QPS at equal recall, traversal bytes."""
    rows = []
    for target_recall in RECALL_TARGETS:
        ours, our_how = qps_at_recall(sq8["curve"], target_recall, "qps_1thread")
        theirs, their_how = qps_at_recall(hnswlib["curve"], target_recall, "qps_1thread")
        rows.append(
            _ratio_row(
                f"QPS @ recall@10={target_recall} 1 thread, sq8 traversal "
                f"(re-rank {sq8.get('rerank')}) vs hnswlib f32",
                ours,
                theirs,
                SQ8_QPS_TARGET_VS_HNSWLIB if target_recall == 0.95 else None,
                higher_is_better=True,
                fmt=lambda v: f"{v:,.0f} q/s",
                check=_how(our_how, their_how),
            )
        )
    rows.append(
        _ratio_row(
            "traversal bytes/vector, sq8 codes vs hnswlib f32 rows",
            sq8["traversal_bytes_per_vector"],
            4.0 * sq8["dim"],
            SQ8_TRAVERSAL_TARGET_VS_F32,
            higher_is_better=False,
            fmt=lambda v: f"{v:,.0f} B",
            check="codes (+4 B under l2) that the graph walk reads; f32 rows read to re-rank",
        )
    )
    return rows


def memory_per_vector(result: dict) -> dict:
    """Bytes per vector, index and its f32 rows together: measured (RSS) and structural."""
    n = result["n"]
    if result.get("engine", "paradox").startswith("paradox"):
        rss = result.get("rss_delta_build_bytes")
        return {
            "rss": None if rss is None else (rss + result["vector_bytes"]) / n,
            "structure": (result["index_bytes"] + result["vector_bytes"]) / n,
            "structure_source": "memory_bytes() + n*d*4",
        }
    file_bytes = result.get("index_file_bytes")
    library = result.get("info", {}).get("library_memory_bytes")
    return {
        "rss": result["rss_delta_build_bytes"] / n,
        "structure": None if file_bytes is None else file_bytes / n,
        "structure_source": "saved index bytes (segments without WAL for qdrant-edge)",
        "library_reported": None if library is None else library / n,
    }


def _how(ours: str, theirs: str) -> str:
    notes = []
    if ours != "interpolated":
        notes.append(f"paradox {ours}")
    if theirs != "interpolated":
        notes.append(f"peer {theirs}")
    return "; ".join(notes)


def _ratio_row(name, ours, theirs, goal, higher_is_better, fmt, check) -> SummaryRow:
    ratio = ours / theirs if ours and theirs else None
    if ratio is None:
        passed, score = None, None
        check = check or "no figure"
    elif goal is None:
        passed, score = None, None
    elif higher_is_better:
        passed, score = ratio >= goal, ratio / goal
    else:
        passed, score = ratio <= goal, goal / ratio
    if passed is False and f"{ratio:.2f}" == f"{goal:.2f}":
        check = "; ".join(filter(None, [check, f"ratio {ratio:.4f}"]))  # 1.20 printed, 1.195 real
    target = "-" if goal is None else (f">= {goal:g}" if higher_is_better else f"<= {goal:g}")
    return SummaryRow(
        benchmark=name,
        paradox="-" if ours is None else fmt(ours),
        peer="-" if theirs is None else fmt(theirs),
        ratio=ratio,
        target=target,
        score=score,
        passed=passed,
        check=check,
    )


def _to_indexed_seconds(result: dict) -> float:
    """First vector handed over to all indexed: a peer's own figure, ours through the
    engine where it was measured, else the build alone."""
    peer = result.get("info", {}).get("insert_to_indexed_seconds")
    ours = result.get("engine_ingest", {}).get("insert_to_indexed_seconds")
    return peer or ours or result["build_seconds"]


def print_engines(results: dict[str, dict]) -> None:
    header = [
        "engine",
        "build s",
        "to indexed s",
        "B/vec RSS",
        "B/vec struct",
        "disk B/vec",
        "open s",
        "peak RSS MB",
    ]
    lines = [header]
    for name, r in results.items():
        mem = memory_per_vector(r)
        disk = r.get("index_file_bytes")
        if name == "paradox" and disk is not None:
            disk += r["vector_bytes"]  # the graph file holds no vectors; a segment would
        lines.append(
            [
                name,
                f"{r['build_seconds']:.2f}",
                f"{_to_indexed_seconds(r):.2f}",
                _num(mem["rss"]),
                _num(mem["structure"]),
                _num(None if disk is None else disk / r["n"]),
                "-" if r.get("open_seconds") is None else f"{r['open_seconds']:.3f}",
                f"{r.get('peak_rss_bytes', 0) / 2**20:,.0f}",
            ]
        )
    _print_grid(lines)


def print_curves(results: dict[str, dict]) -> None:
    header = [
        "engine",
        "ef",
        "R@1",
        "R@10",
        "R@100",
        "QPS 1t",
        "(call/batch)",
        "p50 us",
        "p95 us",
        "p99 us",
        "QPS all",
    ]
    lines = [header]
    for name, r in results.items():
        for p in r["curve"]:
            split = (
                f"{p['qps_1thread_per_call']:,.0f}/{p['qps_1thread_batch']:,.0f}"
                if "qps_1thread_per_call" in p
                else "in-process"
            )
            lines.append(
                [
                    name,
                    str(p["ef"]),
                    f"{p['recall_at_1']:.4f}",
                    f"{p.get('recall_at_10', float('nan')):.4f}",
                    "-" if "recall_at_100" not in p else f"{p['recall_at_100']:.4f}",
                    f"{p['qps_1thread']:,.0f}",
                    split,
                    f"{p['p50_us']:.0f}",
                    f"{p['p95_us']:.0f}",
                    f"{p['p99_us']:.0f}",
                    f"{p['qps_all_threads']:,.0f}",
                ]
            )
    _print_grid(lines)


def draw_curves(path, results: dict[str, dict], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 5.2), sharey=False)
    styles = {
        "paradox": ("tab:red", "o", 2.4),
        "paradox-sq8": ("tab:brown", "P", 2.0),
        "hnswlib": ("tab:blue", "s", 1.4),
        "faiss": ("tab:green", "^", 1.4),
        "usearch": ("tab:purple", "D", 1.4),
        "qdrant-edge": ("tab:orange", "v", 1.4),
    }
    for ax, key, label in (
        (axes[0], "qps_1thread", "1 thread (peers: better of per-call and one batch call)"),
        (axes[1], "qps_all_threads", "all threads, batch"),
    ):
        for name, r in results.items():
            colour, marker, width = styles.get(name, ("gray", "x", 1.2))
            pts = [(p["recall_at_10"], p[key]) for p in r["curve"] if "recall_at_10" in p]
            ax.plot(
                *zip(*pts), marker=marker, color=colour, linewidth=width, label=name, markersize=4
            )
        for target in (0.95, 0.99):
            ax.axvline(target, color="gray", linestyle=":", linewidth=1)
        ax.set_yscale("log")
        ax.set_xlabel("recall@10")
        ax.set_ylabel("queries per second (log)")
        ax.set_title(label)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(loc="lower left", fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _num(value) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _print_grid(lines: list[list[str]]) -> None:
    widths = [max(len(line[c]) for line in lines) for c in range(len(lines[0]))]
    for i, line in enumerate(lines):
        print(
            "  ".join(
                cell.rjust(w) if c else cell.ljust(w)
                for c, (cell, w) in enumerate(zip(line, widths))
            )
        )
        if i == 0:
            print("  ".join("-" * w for w in widths))
