"""CLIP: text and images in one latent space (needs transformers, torch, Pillow)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..encoder import BaseEncoder
from ._pil import pil_image


class CLIPEncoder(BaseEncoder):
    """Normalised CLIP embeddings of strings and PIL images."""

    def __init__(self, model_name: str = "openai/clip-vit-base-patch32", device: str = "cpu") -> None:
        try:
            import torch  # type: ignore[import-not-found]
            from transformers import CLIPModel, CLIPProcessor  # type: ignore[import-not-found]
        except ImportError:
            raise ImportError("Please install 'transformers' and 'torch' to use CLIPEncoder.") from None
        self.torch = torch
        self.device = device
        self.model = CLIPModel.from_pretrained(model_name).to(device)
        self.processor = CLIPProcessor.from_pretrained(model_name)
        super().__init__(self.model.config.projection_dim)

    def encode(self, data: Any) -> np.ndarray:
        """A string is encoded as text, a PIL image as an image."""
        if isinstance(data, str):
            return self.encode_text(data)
        if isinstance(data, pil_image().Image):
            return self.encode_image(data)
        raise ValueError("CLIPEncoder only supports text (str) or PIL Images.")

    def encode_text(self, text: str) -> np.ndarray:
        inputs = self.processor(text=[text], return_tensors="pt", padding=True).to(self.device)
        with self.torch.no_grad():
            features = self.model.get_text_features(**inputs)
        features = features / features.norm(p=2, dim=-1, keepdim=True)
        return features.cpu().numpy()[0]

    def encode_image(self, image: Any) -> np.ndarray:
        inputs = self.processor(images=image, return_tensors="pt").to(self.device)
        with self.torch.no_grad():
            features = self.model.get_image_features(**inputs)
        features = features / features.norm(p=2, dim=-1, keepdim=True)
        return features.cpu().numpy()[0]
