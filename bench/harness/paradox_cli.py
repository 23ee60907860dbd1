"""Builds and calls the `paradox` binary's machine-readable `paradox bench <op>` subcommands.

Contract (crate `paradox-cli`): each subcommand prints exactly one JSON object on stdout whose
`op` field names the subcommand; progress and logs go to stderr.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

STDERR_TAIL_LINES = 20


class ParadoxCliError(RuntimeError):
    """The binary failed, or printed something other than the contract's JSON object."""


def build_release_binary(repo_root: Path) -> Path:
    """Runs `cargo build --release -p paradox-cli` so the figures come from the tree as it is."""
    argv = ["cargo", "build", "--release", "-p", "paradox-cli"]
    print(f"building: {' '.join(argv)}", file=sys.stderr, flush=True)
    try:
        subprocess.run(argv, cwd=repo_root, check=True)
    except FileNotFoundError as err:
        raise ParadoxCliError("cargo not found on PATH; pass --paradox BINARY instead") from err
    except subprocess.CalledProcessError as err:
        raise ParadoxCliError(
            f"`{' '.join(argv)}` failed with exit code {err.returncode}; fix the build or pass "
            "--no-build to benchmark the binary already in target/release"
        ) from err
    return default_binary_path(repo_root)


def default_binary_path(repo_root: Path) -> Path:
    target_dir = Path(os.environ.get("CARGO_TARGET_DIR", repo_root / "target"))
    if not target_dir.is_absolute():
        target_dir = repo_root / target_dir
    return target_dir / "release" / "paradox"


class ParadoxCli:
    """One `paradox` binary; `bench(op, ...)` runs `paradox bench <op> ...` and returns its JSON."""

    def __init__(self, binary: Path):
        if not binary.is_file() or not os.access(binary, os.X_OK):
            raise ParadoxCliError(
                f"paradox binary not found or not executable at {binary}; build it with "
                "`cargo build --release -p paradox-cli` or pass --paradox PATH"
            )
        self.binary = binary

    def bench(self, op: str, **options: object) -> dict:
        """Options become flags (`out_ids=p` -> `--out-ids p`); those set to None are left out."""
        argv = [str(self.binary), "bench", op]
        for key, value in options.items():
            if value is not None:
                argv += [f"--{key.replace('_', '-')}", str(value)]
        print(f"running: {' '.join(argv)}", file=sys.stderr, flush=True)
        done = subprocess.run(argv, capture_output=True, text=True)
        if done.returncode != 0:
            raise ParadoxCliError(
                f"`{' '.join(argv)}` exited with code {done.returncode}:\n{_tail(done.stderr)}"
            )
        return _parse_result(op, argv, done.stdout)


def _parse_result(op: str, argv: list[str], stdout: str) -> dict:
    lines = [line for line in stdout.splitlines() if line.strip()]
    # The contract says one JSON object; accept it pretty-printed too.
    for candidate in (stdout, lines[-1] if lines else ""):
        try:
            result = json.loads(candidate)
        except json.JSONDecodeError:
            continue
        if isinstance(result, dict):
            if result.get("op") != op:
                raise ParadoxCliError(
                    f"`{' '.join(argv)}` printed op={result.get('op')!r}, expected {op!r}"
                )
            return result
    raise ParadoxCliError(
        f"`{' '.join(argv)}` did not print a JSON object on stdout; got:\n{_tail(stdout)}"
    )


def _tail(text: str) -> str:
    return "\n".join(text.splitlines()[-STDERR_TAIL_LINES:])
