"""MusicGen-architecture language model over codec tokens: patterns, model, generation."""

from .config import LMConfig, tiny_config
from .convert import ImportedMusicGen, from_hf_musicgen
from .generate import Conditions, GenerationOutput, generate
from .io import load_lm, save_lm
from .loss import LMLoss, codebook_cross_entropy
from .model import LMOutput, MusicLM
from .patterns import DelayPattern, ParallelPattern, PatternSequence
from .sampling import SamplingParams

__all__ = [
    "Conditions",
    "DelayPattern",
    "GenerationOutput",
    "ImportedMusicGen",
    "LMConfig",
    "LMLoss",
    "LMOutput",
    "MusicLM",
    "ParallelPattern",
    "PatternSequence",
    "SamplingParams",
    "codebook_cross_entropy",
    "from_hf_musicgen",
    "generate",
    "load_lm",
    "save_lm",
    "tiny_config",
]
