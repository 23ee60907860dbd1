"""Media encoders and decoders (0.17 module). Pillow, sentence-transformers, transformers
and torch are imported only when an encoder that needs them is created or used."""

from ..temporal import LatentTrajectory
from .clip_module import CLIPEncoder
from .image import SimpleImageDecoder, SimpleImageEncoder
from .text import SimpleTextEncoder, TransformerTextEncoder
from .video import SimpleVideoDecoder, SimpleVideoEncoder, latent_interpolate

__all__ = [
    "CLIPEncoder",
    "LatentTrajectory",
    "SimpleImageDecoder",
    "SimpleImageEncoder",
    "SimpleTextEncoder",
    "SimpleVideoDecoder",
    "SimpleVideoEncoder",
    "TransformerTextEncoder",
    "latent_interpolate",
]
