"""The codec training task: SEANet + RVQ trained on audio windows, EnCodec / DAC style.

``audiogen train codec --recipe recipes/codec_tiny.toml --out DIR``. The recipe's
``[model]`` section *is* the :class:`~audiogen.codecs.CodecConfig`, and every checkpoint's
``config.json`` carries the codec's own format tag and config, so
``Codec.load(OUT/checkpoints/step_N)`` loads a checkpoint as is (its ``model.safetensors``
holds the codec's weights alone; the discriminator lives in the training state).

Losses (named, combined by the recipe's ``[loss]`` weights, DAC's ``lambdas``): time-domain
L1, multi-scale mel, spectral convergence of long linear STFTs (pitch detail; off unless
``loss.stft``), log-magnitude L1 of full-band STFTs (the quiet bins between partials; off
unless ``loss.log_stft``), VQ commitment, and from ``loss.adversarial_start`` on the hinge
adversarial loss and feature matching of a multi-scale STFT discriminator, which is updated first in
the same step on the detached reconstruction. ``loss.quantize_start`` steps of autoencoder
warm-up (the decoder hears the encoder's unquantized output) may come first.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from audiogen.codecs.config import CodecConfig, build_codec
from audiogen.codecs.discriminators import (
    MultiScaleSTFTDiscriminator,
    discriminator_loss,
    feature_matching_loss,
    generator_adversarial_loss,
)
from audiogen.codecs.losses import (
    LogSTFTMagnitudeLoss,
    MultiScaleMelLoss,
    STFTConvergenceLoss,
    l1_loss,
)
from audiogen.codecs.model import _FORMAT as CODEC_FORMAT
from audiogen.codecs.model import Codec
from audiogen.data.manifest import read_manifest
from audiogen.data.segments import SegmentDataset, collate_segments
from audiogen.train.config import OptimConfig, TrainConfig
from audiogen.train.distributed import unwrap
from audiogen.train.precision import PrecisionPolicy
from audiogen.train.tasks import Critic, StepOutput, Task


@dataclass
class CodecDataConfig:
    """Training windows cut from a manifest (audio is resampled / mixed to the codec's)."""

    manifest: str = "corpus/manifest.jsonl"  # --set data.manifest=PATH
    split: str = "train"
    segment_seconds: float = 1.0
    num_windows: int = 100_000  # examples per pass; each a random window, seeded by index
    seed: int = 1234

    def __post_init__(self) -> None:
        if self.segment_seconds <= 0 or self.num_windows < 1:
            raise ValueError("data.segment_seconds must be > 0 and data.num_windows >= 1")


@dataclass
class LossConfig:
    """Loss weights (0 disables a term) and the discriminator."""

    l1: float = 0.1
    mel: float = 1.0
    commitment: float = 1.0
    adversarial: float = 3.0
    feature_matching: float = 3.0
    adversarial_start: int = 0  # steps of reconstruction-only warm-up before the GAN terms
    # Steps during which the decoder trains on the encoder's unquantized output (an
    # autoencoder warm-up; the codebooks follow the latents by EMA meanwhile, and
    # `audiogen codec refit` can fit them afterwards). 0: quantized from the first step.
    quantize_start: int = 0
    mel_n_ffts: list[int] = field(default_factory=lambda: [32, 64, 128, 256, 512, 1024, 2048])
    mel_bins: int = 64
    stft: float = 0.0  # STFTConvergenceLoss weight: the pitch detail a 64-band mel blurs
    stft_n_ffts: list[int] = field(default_factory=lambda: [2048, 4096])
    stft_f_max: float = 4000.0
    # LogSTFTMagnitudeLoss weight: log-magnitude L1 over the full band, which the quiet
    # bins between partials weigh into (the noise floor a mel loss lets through)
    log_stft: float = 0.0
    log_stft_n_ffts: list[int] = field(default_factory=lambda: [512, 1024, 2048])
    disc_filters: int = 32
    disc_n_ffts: list[int] = field(default_factory=lambda: [1024, 2048, 512])

    def __post_init__(self) -> None:
        names = ("l1", "mel", "stft", "log_stft", "commitment", "adversarial", "feature_matching")
        for name in names:
            if getattr(self, name) < 0:
                raise ValueError(f"loss.{name} must be >= 0, got {getattr(self, name)}")
        if self.adversarial_start < 0 or self.quantize_start < 0:
            raise ValueError("loss.adversarial_start and loss.quantize_start must be >= 0")

    @property
    def gan(self) -> bool:
        return self.adversarial > 0 or self.feature_matching > 0


@dataclass
class CodecRecipe:
    model: CodecConfig = field(default_factory=CodecConfig.tiny)
    data: CodecDataConfig = field(default_factory=CodecDataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)  # the codec (generator)
    disc_optim: OptimConfig = field(default_factory=OptimConfig)  # the discriminator
    train: TrainConfig = field(default_factory=TrainConfig)


@dataclass
class CodecBatch:
    wav: torch.Tensor  # [B, C, T] float32 training windows


class CodecWindows:
    """Random fixed-length windows of a manifest's split: ``get_batch(indices) -> CodecBatch``."""

    def __init__(self, *, cfg: CodecDataConfig, sample_rate: int, channels: int) -> None:
        # The codec needs no melody: skip the per-window MIDI chroma.
        items = [dataclasses.replace(i, midi=None) for i in read_manifest(cfg.manifest)]
        self.segments = SegmentDataset(
            items,
            segment_seconds=cfg.segment_seconds,
            sample_rate=sample_rate,
            channels=channels,
            num_samples=cfg.num_windows,
            seed=cfg.seed,
            split=cfg.split,
            rank=0,
            world_size=1,
        )

    def __len__(self) -> int:
        return len(self.segments)

    def get_batch(self, indices: Sequence[int]) -> CodecBatch:
        return CodecBatch(wav=collate_segments([self.segments[int(i)] for i in indices]).wav)


class CodecLosses(nn.Module):
    """The critic of codec training: the discriminator plus the loss terms and weights.

    Its only parameters are the discriminator's (filterbanks and windows are buffers).
    """

    def __init__(
        self,
        *,
        discriminator: MultiScaleSTFTDiscriminator,
        mel: MultiScaleMelLoss,
        stft: STFTConvergenceLoss | None,
        cfg: LossConfig,
        log_stft: LogSTFTMagnitudeLoss | None = None,
    ) -> None:
        super().__init__()
        self.discriminator = discriminator
        self.mel = mel
        self.stft = stft
        self.log_stft = log_stft
        self.cfg = cfg


def build_model(recipe: CodecRecipe) -> Codec:
    return build_codec(recipe.model)


def build_dataset(recipe: CodecRecipe) -> CodecWindows:
    m = recipe.model
    return CodecWindows(cfg=recipe.data, sample_rate=m.sample_rate, channels=m.channels)


def build_critic(recipe: CodecRecipe) -> tuple[CodecLosses, OptimConfig]:
    m, lc = recipe.model, recipe.loss
    losses = CodecLosses(
        discriminator=MultiScaleSTFTDiscriminator(
            channels=m.channels, filters=lc.disc_filters, n_ffts=lc.disc_n_ffts
        ),
        mel=MultiScaleMelLoss(sample_rate=m.sample_rate, n_ffts=lc.mel_n_ffts, n_mels=lc.mel_bins),
        stft=STFTConvergenceLoss(
            sample_rate=m.sample_rate, n_ffts=lc.stft_n_ffts, f_max=lc.stft_f_max
        )
        if lc.stft
        else None,
        log_stft=LogSTFTMagnitudeLoss(n_ffts=lc.log_stft_n_ffts) if lc.log_stft else None,
        cfg=lc,
    )
    return losses, recipe.disc_optim


def codec_step(
    model: nn.Module, batch: CodecBatch, precision: PrecisionPolicy, *, critic: Critic
) -> StepOutput:
    """Discriminator update, then the codec's weighted loss (backpropagated by the loop).

    wav ``[B, C, T]`` -> reconstruction ``[B, C, T]``; losses are reduced in fp32.
    """
    losses: CodecLosses = critic.module
    cfg, disc = losses.cfg, losses.discriminator
    real = batch.wav
    out = model(precision.cast_input(real), quantize=critic.step >= cfg.quantize_start)
    fake = out.audio.float()
    metrics: dict[str, float] = {}
    gan = cfg.gan and critic.step >= cfg.adversarial_start

    if gan:  # 1. discriminator: hinge loss on real vs detached reconstruction
        critic.optimizer.zero_grad(set_to_none=True)
        d_loss = discriminator_loss(disc(real), disc(fake.detach()))
        if torch.isfinite(d_loss):
            d_loss.backward()
            critic.optimizer.step()
        metrics["d_loss"] = d_loss.item()

    # 2. codec: named terms, weighted by the recipe
    terms = {"l1": l1_loss(fake, real), "mel": losses.mel(fake, real)}
    if losses.stft is not None:
        terms["stft"] = losses.stft(fake, real)
    if losses.log_stft is not None:
        terms["log_stft"] = losses.log_stft(fake, real)
    terms["commitment"] = out.commit_loss.float()
    if gan:
        disc.requires_grad_(False)  # the codec's backward needs no discriminator grads
        d_fake = disc(fake)
        with torch.no_grad():
            d_real = disc(real)
        disc.requires_grad_(True)
        terms["adversarial"] = generator_adversarial_loss(d_fake)
        terms["feature_matching"] = feature_matching_loss(d_real, d_fake)
    loss = sum(getattr(cfg, name) * value for name, value in terms.items())
    metrics.update({name: value.item() for name, value in terms.items()})
    metrics.update(codebook_perplexity(out.codes, unwrap(model).cardinality))
    return StepOutput(loss=loss, metrics=metrics, items=real.shape[0] * real.shape[-1])


@torch.no_grad()
def codebook_perplexity(codes: torch.Tensor, cardinality: int) -> dict[str, float]:
    """Per-codebook perplexity of the batch's codes ``[B, K, F]`` (``ppl_q1`` ...).

    exp(entropy) of the code histogram: the number of equally used codes it is worth. A
    codebook near 1 has collapsed; near ``cardinality`` it is fully used (batch permitting).
    """
    flat = codes.transpose(0, 1).reshape(codes.shape[1], -1)  # [K, N]
    out = {}
    for k, row in enumerate(flat):
        p = torch.bincount(row, minlength=cardinality).double() / row.numel()
        entropy = -(p[p > 0] * p[p > 0].log()).sum()
        out[f"ppl_q{k + 1}"] = float(entropy.exp())
    return out


def checkpoint_meta(recipe: CodecRecipe) -> dict:
    """What :meth:`Codec.load` reads from ``config.json`` (beside the resolved recipe)."""
    return {
        "format": CODEC_FORMAT,
        "version": 1,
        "bandwidth": None,
        "weight_norm_folded": False,
        "codec": recipe.model.to_dict(),
    }


TASK = Task(
    name="codec",
    help="the SEANet + RVQ codec on audio windows (reconstruction + STFT-discriminator GAN)",
    recipe_cls=CodecRecipe,
    build_model=build_model,
    build_dataset=build_dataset,
    step=codec_step,
    items_unit="samples",
    checkpoint_meta=checkpoint_meta,
    build_critic=build_critic,
)
