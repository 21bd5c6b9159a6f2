"""LM configuration: one dataclass, validated, round-trips through JSON."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from audiogen.errors import UserError

from .patterns import DelayPattern


@dataclass
class LMConfig:
    """Hyper-parameters of the MusicGen-architecture LM.

    The defaults are MusicGen-small's decoder (d=1024, 24 layers, 16 heads, 4 x 2048).
    ``cross_attention=False`` is the MusicGen-melody layout (conditions are prepended).
    ``delays`` is the codebook delay pattern (None: ``[0..K-1]``, MusicGen mono).
    """

    num_codebooks: int = 4
    cardinality: int = 2048
    dim: int = 1024
    num_heads: int = 16
    num_layers: int = 24
    ffn_dim: int = 4096
    cross_attention: bool = True
    delays: list[int] | None = None
    max_positions: int = 2048
    norm_eps: float = 1e-5
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.dim % self.num_heads:
            raise UserError(
                f"lm config: dim {self.dim} is not divisible by num_heads {self.num_heads}"
            )
        for name in ("num_codebooks", "cardinality", "dim", "num_heads", "num_layers", "ffn_dim"):
            if int(getattr(self, name)) <= 0:
                raise UserError(f"lm config: {name} must be > 0, got {getattr(self, name)}")
        if self.delays is not None and len(self.delays) != self.num_codebooks:
            raise UserError(
                f"lm config: {len(self.delays)} delays for {self.num_codebooks} codebooks"
            )

    @property
    def special_token(self) -> int:
        """Id of the special (start / empty) token: the codec cardinality."""
        return self.cardinality

    def pattern(self) -> DelayPattern:
        """The codebook pattern this LM was trained with."""
        return DelayPattern(self.num_codebooks, delays=self.delays)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LMConfig:
        """Build from a dict; an unknown key is a UserError naming it."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UserError(f"lm config: unknown key(s) {', '.join(unknown)}")
        return cls(**data)


def tiny_config(**overrides: Any) -> LMConfig:
    """A debug-size LM config for tests (builds in milliseconds on CPU)."""
    base: dict[str, Any] = dict(
        num_codebooks=4, cardinality=32, dim=32, num_heads=4, num_layers=2, ffn_dim=64
    )
    base.update(overrides)
    return LMConfig(**base)
