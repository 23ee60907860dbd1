"""What the numbers were measured on: CPU, memory, SIMD level, library versions, git commit.

Absolute figures drift between runs on these shared machines; this record is what lets a
reader tell whether two reports can be compared at all.
"""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import psutil

PEER_PACKAGES = ("numpy", "faiss-cpu", "paradoxlf", "psutil", "matplotlib")


def describe_machine(repo_root: Path, data_dir: Path) -> dict:
    flags = _cpu_flags()
    return {
        "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cpu_model": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "usable_cores": usable_cores(),
        "ram_bytes": psutil.virtual_memory().total,
        "load_average_at_start": load_average(),
        "simd_level": simd_level(flags),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "data_filesystem": _filesystem_of(data_dir),
        "packages": {name: _package_version(name) for name in PEER_PACKAGES},
        "faiss_compile_options": _faiss_compile_options(),
        "rustc": _command_output(["rustc", "--version"]),
        "git": _git_state(repo_root),
    }


def usable_cores() -> int:
    """Cores this process may run on (affinity), which is what "all threads" means here."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def load_average() -> list[float]:
    """1, 5 and 15 minute load averages: other work on a shared machine skews every figure."""
    return [round(load, 2) for load in os.getloadavg()]


def simd_level(flags: set[str]) -> str:
    """The widest vector instruction set the CPU reports, as the Rust kernels would pick it."""
    if {"avx512f", "avx512bw", "avx512vl"} <= flags:
        return "avx512"
    if {"avx2", "fma"} <= flags:
        return "avx2+fma"
    if "avx" in flags:
        return "avx"
    if "sse4_2" in flags:
        return "sse4.2"
    if "asimd" in flags:
        return "neon"
    return "scalar"


def _cpuinfo_field(field: str) -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(":")
                if key.strip() == field:
                    return value.strip()
    except OSError:
        pass
    return None


def _cpu_model() -> str:
    return _cpuinfo_field("model name") or platform.processor() or "unknown"


def _cpu_flags() -> set[str]:
    # x86 says "flags", arm64 says "Features".
    return set((_cpuinfo_field("flags") or _cpuinfo_field("Features") or "").split())


def _filesystem_of(path: Path) -> dict:
    """fsync cost depends on the file system: tmpfs makes durable ingest look free."""
    path = path.resolve()
    best = None
    for part in psutil.disk_partitions(all=True):
        if path.is_relative_to(part.mountpoint) and (
            best is None or len(part.mountpoint) > len(best.mountpoint)
        ):
            best = part
    if best is None:
        return {"path": str(path)}
    return {"path": str(path), "mountpoint": best.mountpoint, "fstype": best.fstype}


def _package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _faiss_compile_options() -> str | None:
    try:
        import faiss
    except ImportError:
        return None
    return faiss.get_compile_options().strip()


def _git_state(repo_root: Path) -> dict:
    commit = _command_output(["git", "-C", str(repo_root), "rev-parse", "HEAD"])
    status = _command_output(["git", "-C", str(repo_root), "status", "--porcelain"])
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def _command_output(argv: list[str]) -> str | None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()
