"""Codec configuration: one dataclass, the EnCodec presets, and the one builder.

``CodecConfig`` is what a checkpoint's ``config.json`` holds; :func:`build_codec` is the
only place that turns it into modules.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from audiogen.codecs.conv import ACTIVATIONS
from audiogen.codecs.rvq import ResidualVectorQuantizer
from audiogen.codecs.seanet import NORMS, SEANetDecoder, SEANetEncoder

if TYPE_CHECKING:
    from audiogen.codecs.model import Codec


@dataclass(frozen=True)
class CodecConfig:
    """Architecture and quantizer settings of a SEANet + RVQ codec (EnCodec's defaults)."""

    sample_rate: int = 24_000
    channels: int = 1
    # SEANet
    dimension: int = 128  # latent size D
    n_filters: int = 32
    n_residual_layers: int = 1
    ratios: tuple[int, ...] = (8, 5, 4, 2)  # decoder (upsampling) order; hop = product
    kernel_size: int = 7
    last_kernel_size: int = 7
    residual_kernel_size: int = 3
    dilation_base: int = 2
    causal: bool = False
    norm: str = "weight_norm"  # weight_norm | time_group_norm | none
    pad_mode: str = "reflect"
    true_skip: bool = False  # identity shortcut in residual blocks instead of a 1x1 conv
    compress: int = 2
    lstm_layers: int = 2
    activation: str = "elu"  # elu (EnCodec) | snake (periodic, as in DAC; no peer to convert to)
    trim_right_ratio: float = 1.0
    # RVQ
    n_q: int = 32
    bins: int = 1024
    target_bandwidths: tuple[float, ...] = (1.5, 3.0, 6.0, 12.0, 24.0)  # kbps
    decay: float = 0.99
    kmeans_init: bool = True
    kmeans_iters: int = 50
    threshold_ema_dead_code: float = 2.0
    q_dropout: bool = False
    # Long-signal handling (EnCodec 48 kHz): per-segment RMS normalisation, overlap-add.
    normalize: bool = False
    segment: float | None = None  # seconds; None = encode the whole signal at once
    overlap: float = 0.01  # fraction of a segment shared with the next one
    name: str = field(default="codec", compare=False)

    def __post_init__(self) -> None:
        # JSON gives lists; keep tuples so the config stays hashable and comparable.
        object.__setattr__(self, "ratios", tuple(int(r) for r in self.ratios))
        object.__setattr__(
            self, "target_bandwidths", tuple(float(b) for b in self.target_bandwidths)
        )
        if self.channels not in (1, 2):
            raise ValueError(f"channels must be 1 or 2, got {self.channels}")
        if self.norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {self.norm!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {self.activation!r}")
        if self.norm == "time_group_norm" and self.causal:
            raise ValueError("time_group_norm cannot be causal")
        if 2 ** int(math.log2(self.bins)) != self.bins:
            raise ValueError(f"bins must be a power of 2, got {self.bins}")
        if self.segment is not None and self.segment <= 0:
            raise ValueError(f"segment must be positive seconds, got {self.segment}")
        if not 0 <= self.overlap < 1:
            raise ValueError(f"overlap must be in [0, 1), got {self.overlap}")

    @property
    def hop_length(self) -> int:
        return math.prod(self.ratios)

    @property
    def frame_rate(self) -> int:
        # EnCodec rounds up; all its models have integer rates anyway.
        return math.ceil(self.sample_rate / self.hop_length)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["ratios"] = list(self.ratios)
        d["target_bandwidths"] = list(self.target_bandwidths)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CodecConfig:
        """Build from a dict; an unknown key is a ``ValueError`` naming it."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown codec config key(s): {', '.join(unknown)}")
        return cls(**d)

    def replace(self, **changes: Any) -> CodecConfig:
        return dataclasses.replace(self, **changes)

    # Presets ------------------------------------------------------------------------

    @classmethod
    def encodec_24khz(cls) -> CodecConfig:
        """EnCodec 24 kHz mono, causal, 1.5-24 kbps (32 codebooks of 1024, 75 Hz)."""
        return cls(sample_rate=24_000, channels=1, causal=True, n_q=32, name="encodec_24khz")

    @classmethod
    def encodec_48khz(cls) -> CodecConfig:
        """EnCodec 48 kHz stereo, non-causal, group norm, 1 s normalised segments."""
        return cls(
            sample_rate=48_000,
            channels=2,
            causal=False,
            norm="time_group_norm",
            n_q=16,
            target_bandwidths=(3.0, 6.0, 12.0, 24.0),
            normalize=True,
            segment=1.0,
            name="encodec_48khz",
        )

    @classmethod
    def encodec_32khz(cls) -> CodecConfig:
        """MusicGen's EnCodec: 32 kHz mono, 4 codebooks of 2048, 50 Hz frames, 2.2 kbps."""
        return cls(
            sample_rate=32_000,
            channels=1,
            n_filters=64,
            ratios=(8, 5, 4, 4),
            causal=False,
            true_skip=True,
            n_q=4,
            bins=2048,
            target_bandwidths=(2.2,),
            name="encodec_32khz",
        )

    @classmethod
    def tiny(cls, *, channels: int = 1, causal: bool = False) -> CodecConfig:
        """Debug size (~37 k parameters): 16 kHz, hop 64 (250 Hz), 4 codebooks of 64."""
        return cls(
            sample_rate=16_000,
            channels=channels,
            dimension=16,
            n_filters=4,
            ratios=(4, 4, 4),
            causal=causal,
            lstm_layers=1,
            n_q=4,
            bins=64,
            target_bandwidths=(1.5, 6.0),
            kmeans_iters=5,
            name="tiny",
        )


def build_codec(config: CodecConfig) -> Codec:
    """Construct an untrained :class:`~audiogen.codecs.model.Codec` from ``config``."""
    from audiogen.codecs.model import Codec

    seanet = dict(
        channels=config.channels,
        dimension=config.dimension,
        n_filters=config.n_filters,
        n_residual_layers=config.n_residual_layers,
        ratios=config.ratios,
        kernel_size=config.kernel_size,
        last_kernel_size=config.last_kernel_size,
        residual_kernel_size=config.residual_kernel_size,
        dilation_base=config.dilation_base,
        causal=config.causal,
        norm=config.norm,
        pad_mode=config.pad_mode,
        true_skip=config.true_skip,
        compress=config.compress,
        lstm_layers=config.lstm_layers,
        activation=config.activation,
    )
    quantizer = ResidualVectorQuantizer(
        dim=config.dimension,
        n_q=config.n_q,
        bins=config.bins,
        decay=config.decay,
        kmeans_init=config.kmeans_init,
        kmeans_iters=config.kmeans_iters,
        threshold_ema_dead_code=config.threshold_ema_dead_code,
        q_dropout=config.q_dropout,
    )
    return Codec(
        encoder=SEANetEncoder(**seanet),
        decoder=SEANetDecoder(**seanet, trim_right_ratio=config.trim_right_ratio),
        quantizer=quantizer,
        config=config,
    )
