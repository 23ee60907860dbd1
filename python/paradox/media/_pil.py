"""Pillow, imported on first use."""

from __future__ import annotations

from typing import Any


def pil_image() -> Any:
    try:
        from PIL import Image  # type: ignore[import-not-found]
    except ImportError:
        raise ImportError("Pillow is required. pip install Pillow") from None
    return Image
