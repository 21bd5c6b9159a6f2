"""Conditioners turn raw conditions (text, melody) into ``(emb [B, S, D], mask [B, S])``.

Each splits ``tokenize()`` (CPU/data side) from ``forward()``; a ``None`` input is the null
condition, the unconditional branch of classifier-free guidance.
"""

from audiogen.conditioners.base import ConditionOutput, dropout_inputs
from audiogen.conditioners.fuser import ConditionFuser, FusedCondition
from audiogen.conditioners.melody import ChromaExtractor, MelodyConditioner
from audiogen.conditioners.text import TextConditioner, minilm_conditioner, t5_conditioner

__all__ = [
    "ChromaExtractor",
    "ConditionFuser",
    "ConditionOutput",
    "FusedCondition",
    "MelodyConditioner",
    "TextConditioner",
    "dropout_inputs",
    "minilm_conditioner",
    "t5_conditioner",
]
