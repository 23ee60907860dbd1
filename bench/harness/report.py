"""The three forms of a report: a table on stdout, a JSON file, and a PNG chart beside it."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np


@dataclass
class SummaryRow:
    """One line of the table. `score` is measured / target (>= 1.0 meets the target)."""

    benchmark: str
    paradox: str
    peer: str
    ratio: float | None
    target: str
    score: float | None
    passed: bool | None
    check: str


def error_row(benchmark: str, message: str) -> SummaryRow:
    """The message's last line is usually the cause (the binary's own stderr); JSON has all."""
    lines = message.strip().splitlines()
    cause = lines[-1] if lines else "error"
    return SummaryRow(benchmark, "ERROR", "-", None, "-", None, None, cause[:100])


def print_table(rows: list[SummaryRow]) -> None:
    header = ("benchmark", "paradox", "peer", "ratio", "target", "result", "check")
    lines = [header] + [
        (
            row.benchmark,
            row.paradox,
            row.peer,
            "-" if row.ratio is None else f"{row.ratio:.2f}",
            row.target,
            {True: "PASS", False: "FAIL", None: "-"}[row.passed],
            row.check,
        )
        for row in rows
    ]
    widths = [max(len(line[col]) for line in lines) for col in range(len(header))]
    for n, line in enumerate(lines):
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        )
        if n == 0:
            print("  ".join("-" * width for width in widths))


def write_json(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(_jsonable(payload), f, indent=2)
        f.write("\n")


def draw_chart(path: Path, rows: list[SummaryRow], title: str) -> bool:
    """Bars of measured / target on a log scale, the target at 1.0. False if nothing to draw."""
    scored = [row for row in rows if row.score is not None and row.score > 0]
    if not scored:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 0.6 * len(scored) + 1.8))
    positions = np.arange(len(scored))[::-1]
    colours = ["tab:green" if row.passed else "tab:red" for row in scored]
    ax.barh(positions, [row.score for row in scored], color=colours, alpha=0.8)
    ax.axvline(1.0, color="black", linestyle="--", linewidth=1, label="target")
    ax.set_xscale("log")
    ax.set_yticks(positions, [row.benchmark for row in scored])
    ax.set_xlabel("measured / target (log scale; >= 1 meets the target)")
    ax.set_title(title)
    for y, row in zip(positions, scored, strict=True):
        measured = f"ratio {row.ratio:.2f}" if row.ratio is not None else row.paradox
        ax.annotate(
            f" {measured}  (target {row.target})",
            (row.score, y),
            va="center",
            fontsize=8,
        )
    low, high = min(row.score for row in scored), max(row.score for row in scored)
    ax.set_xlim(min(0.5, low / 1.5), max(2.0, high) * 8)
    ax.legend(loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def summary_as_dicts(rows: list[SummaryRow]) -> list[dict]:
    return [asdict(row) for row in rows]


def _jsonable(value):
    """numpy scalars and arrays are not JSON; Paths neither."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value
