"""Refit a trained codec's RVQ codebooks by k-means on its encoder's output.

A codec trained on CPU sees a few hundred latent vectors per step, fewer than its 1024
codes per codebook need to stay alive under EnCodec's dead-code rule, so its codebooks end
up barely used (the first ~100 codes, the last ones ~1) and quantization, not the
autoencoder, limits what the tokens keep. Refitting runs the encoder over windows of a
manifest's training split and fits each codebook in turn, by Lloyd's k-means, to what the
codebooks before it leave over (the residual), as RVQ uses them. The encoder and decoder
are unchanged; the decoder was trained on quantized latents and reads the closer
approximations as well.

    audiogen codec refit --codec runs/codec/checkpoints/step_003000 \
        --manifest corpus/manifest.jsonl --out runs/codec_refit
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from audiogen import audio
from audiogen.codecs.model import Codec
from audiogen.codecs.rvq import kmeans
from audiogen.data.manifest import ManifestItem


@dataclass
class RefitReport:
    frames: int = 0
    items: int = 0
    skipped: dict[str, str] = field(default_factory=dict)  # path -> reason
    perplexity: list[float] = field(default_factory=list)  # per codebook, on the fit frames
    residual: list[float] = field(default_factory=list)  # energy left after each codebook


@torch.inference_mode()
def encoder_frames(
    codec: Codec,
    items: Sequence[ManifestItem],
    *,
    seconds: float,
    report: RefitReport,
) -> torch.Tensor:
    """Latent frames ``[N, D]`` of the middle ``seconds`` of each item (all of a shorter one).

    Unreadable items are skipped and listed in ``report.skipped``.
    """
    frames = []
    device = next(codec.parameters()).device
    for item in items:
        try:
            info = audio.info(item.path)
            offset = max(0.0, (info.duration - seconds) / 2)
            wav, _ = audio.load(
                item.path,
                sample_rate=codec.sample_rate,
                channels=codec.channels,
                offset=offset,
                duration=seconds,
            )
        except audio.AudioError as e:  # a dataset tool reports a broken file and goes on
            report.skipped[item.path] = str(e)
            continue
        z = codec.encoder(wav[None].to(device))  # [1, D, F]
        frames.append(z[0].t().float().cpu())
        report.items += 1
    if not frames:
        raise ValueError("no readable audio to fit the codebooks on")
    out = torch.cat(frames)
    report.frames = out.shape[0]
    return out


@torch.no_grad()
def refit_codebooks(
    codec: Codec,
    frames: torch.Tensor,
    *,
    iters: int = 25,
    seed: int = 0,
    report: RefitReport | None = None,
) -> RefitReport:
    """Fit each codebook of ``codec`` in turn to the residual of the ones before; in place.

    Every codebook is re-centred by k-means (``iters`` Lloyd steps, initial centroids drawn
    with ``seed``); its EMA statistics are reset to the fit's counts, so training can go on
    from the refitted codec. Adds per-codebook perplexity and remaining energy to ``report``
    (the one :func:`encoder_frames` filled, or a new one) and returns it.
    """
    report = report or RefitReport(frames=frames.shape[0])
    residual = frames.to(next(codec.parameters()).device, torch.float32)
    energy = residual.pow(2).mean()
    for k, layer in enumerate(codec.quantizer.layers):
        cb = layer.codebook
        torch.manual_seed(seed + k)
        means, counts = kmeans(residual, cb.codebook_size, iters=iters)
        cb.embed.copy_(means)
        cb.embed_avg.copy_(means * counts[:, None])
        cb.cluster_size.copy_(counts)
        cb.inited.fill_(1.0)
        codes = cb.quantize(residual)
        residual = residual - cb.decode(codes)
        p = torch.bincount(codes, minlength=cb.codebook_size).double() / codes.numel()
        report.perplexity.append(float((-(p[p > 0] * p[p > 0].log()).sum()).exp()))
        report.residual.append(float(residual.pow(2).mean() / energy))
    return report


def select_items(
    items: Sequence[ManifestItem], *, split: str | None, max_items: int | None, seed: int
) -> list[ManifestItem]:
    """The split's items (all when ``split`` is None), at most ``max_items`` drawn at random."""
    chosen = [it for it in items if split is None or it.split == split]
    if max_items is not None and len(chosen) > max_items:
        chosen = random.Random(seed).sample(chosen, max_items)
    return chosen
