"""Images as flattened, resized RGB pixels (needs Pillow)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..decoder import BaseDecoder
from ..encoder import BaseEncoder
from ._pil import pil_image


class SimpleImageEncoder(BaseEncoder):
    """Resizes to ``width × height`` RGB and flattens to ``width*height*3`` values in [0, 1]."""

    def __init__(self, width: int = 64, height: int = 64) -> None:
        self.width = width
        self.height = height
        super().__init__(dimension=width * height * 3)

    def encode(self, image_path_or_obj: Any) -> np.ndarray:
        image = pil_image()
        img = image.open(image_path_or_obj) if isinstance(image_path_or_obj, str) else image_path_or_obj
        img = img.convert("RGB").resize((self.width, self.height))
        return (np.array(img, dtype=np.float32) / 255.0).flatten()


class SimpleImageDecoder(BaseDecoder):
    """The inverse of :class:`SimpleImageEncoder` (values clipped to [0, 1])."""

    def __init__(self, width: int = 64, height: int = 64) -> None:
        self.width = width
        self.height = height
        super().__init__(dimension=width * height * 3)

    def decode(self, vector: Any) -> Any:
        image = pil_image()
        clipped = np.clip(np.asarray(vector), 0.0, 1.0)
        pixels = (clipped.reshape(self.height, self.width, 3) * 255).astype(np.uint8)
        return image.fromarray(pixels)
