"""MusicGen-architecture language model over codec tokens: patterns, model, generation."""

from .config import LMConfig, tiny_config
from .model import LMOutput, MusicLM
from .patterns import DelayPattern, ParallelPattern, PatternSequence

__all__ = [
    "DelayPattern",
    "LMConfig",
    "LMOutput",
    "MusicLM",
    "ParallelPattern",
    "PatternSequence",
    "tiny_config",
]
