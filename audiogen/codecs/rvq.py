"""Residual vector quantizer with EMA codebooks (EnCodec / SoundStream style).

Training behaviour: codebooks are initialised by k-means on the first batch, updated by
exponential moving averages (no gradient), codes whose usage falls below a threshold are
replaced by random vectors of the current batch, and quantizer dropout trains every prefix
of the codebook stack so one model serves several bitrates.

Buffer names (``inited``, ``cluster_size``, ``embed``, ``embed_avg``) are the peers' so
imported weights map one to one. Under ``torch.distributed`` the EMA statistics are
all-reduced and every random codebook change is broadcast from rank 0, so all ranks keep
identical codebooks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn


@dataclass
class QuantizedResult:
    """Output of :meth:`ResidualVectorQuantizer.forward`."""

    quantized: (
        torch.Tensor
    )  # [B, D, T] sum of the selected codewords (straight-through in training)
    codes: torch.Tensor  # [B, K, T] int64, K = n_q
    commit_loss: torch.Tensor  # [] mean over the K layers of ||x - sg(q)||^2
    n_q: int  # number of codebooks used for this call


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _broadcast(*tensors: torch.Tensor) -> None:
    if _distributed():
        for t in tensors:
            dist.broadcast(t, src=0)


def _all_reduce_mean(t: torch.Tensor) -> torch.Tensor:
    if _distributed():
        dist.all_reduce(t)
        t /= dist.get_world_size()
    return t


def _sample_vectors(samples: torch.Tensor, num: int) -> torch.Tensor:
    """``num`` rows of ``samples [N, D]``, without replacement when ``N >= num``."""
    n = samples.shape[0]
    if n >= num:
        idx = torch.randperm(n, device=samples.device)[:num]
    else:
        idx = torch.randint(0, n, (num,), device=samples.device)
    return samples[idx]


def kmeans(
    samples: torch.Tensor, num_clusters: int, *, iters: int = 10
) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd's k-means on ``samples [N, D]``; returns centroids ``[K, D]`` and counts ``[K]``.

    A centroid that loses all its points keeps its previous position.
    """
    means = _sample_vectors(samples, num_clusters)
    counts = torch.zeros(num_clusters, device=samples.device, dtype=samples.dtype)
    for _ in range(iters):
        assign = torch.cdist(samples, means).argmin(dim=-1)  # [N]
        counts = torch.bincount(assign, minlength=num_clusters).to(samples.dtype)
        sums = torch.zeros_like(means).index_add_(0, assign, samples)
        new_means = sums / counts.clamp(min=1)[:, None]
        means = torch.where((counts == 0)[:, None], means, new_means)
    return means, counts


class EuclideanCodebook(nn.Module):
    """One codebook of ``codebook_size`` vectors of size ``dim``, nearest-neighbour lookup."""

    def __init__(
        self,
        *,
        dim: int,
        codebook_size: int,
        decay: float = 0.99,
        epsilon: float = 1e-5,
        kmeans_init: bool = True,
        kmeans_iters: int = 50,
        threshold_ema_dead_code: float = 2.0,
    ) -> None:
        super().__init__()
        self.codebook_size = codebook_size
        self.decay = decay
        self.epsilon = epsilon
        self.kmeans_iters = kmeans_iters
        self.threshold_ema_dead_code = threshold_ema_dead_code
        if kmeans_init:
            embed = torch.zeros(codebook_size, dim)
        else:
            embed = nn.init.kaiming_uniform_(torch.empty(codebook_size, dim))
        # Float flag, not bool, to match the peers' state dicts.
        self.register_buffer("inited", torch.tensor([float(not kmeans_init)]))
        self.register_buffer("cluster_size", torch.zeros(codebook_size))
        self.register_buffer("embed", embed)
        self.register_buffer("embed_avg", embed.clone())

    def quantize(self, x: torch.Tensor) -> torch.Tensor:
        """Nearest codeword index for each row of ``x [N, D]`` -> ``[N]`` int64."""
        embed_t = self.embed.t()
        # Same expression and order as EnCodec, so imported models pick the same codes
        # even where two codewords are nearly equidistant.
        dist_neg = -(
            x.pow(2).sum(1, keepdim=True) - 2 * x @ embed_t + embed_t.pow(2).sum(0, keepdim=True)
        )
        return dist_neg.max(dim=-1).indices

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Codewords for ``codes [...]`` -> ``[..., D]``."""
        return F.embedding(codes, self.embed)

    @torch.no_grad()
    def _init_kmeans(self, x: torch.Tensor) -> None:
        embed, counts = kmeans(x, self.codebook_size, iters=self.kmeans_iters)
        self.embed.copy_(embed)
        # embed_avg is an EMA of per-code *sums*, so it starts at mean * count; starting
        # it at the mean (as EnCodec does) shrinks every codeword on the next update.
        self.embed_avg.copy_(embed * counts[:, None])
        self.cluster_size.copy_(counts)
        self.inited.fill_(1.0)
        _broadcast(self.embed, self.embed_avg, self.cluster_size)

    @torch.no_grad()
    def _replace_dead_codes(self, x: torch.Tensor) -> int:
        if self.threshold_ema_dead_code <= 0:
            return 0
        dead = self.cluster_size < self.threshold_ema_dead_code  # [K]
        n_dead = int(dead.sum())
        if n_dead:
            fresh = _sample_vectors(x, self.codebook_size)
            mask = dead[:, None]
            self.embed.copy_(torch.where(mask, fresh, self.embed))
            # Reset the running statistics too, or the next EMA step would recompute the
            # replaced codewords from their stale averages and undo the replacement.
            self.embed_avg.copy_(
                torch.where(mask, fresh * self.threshold_ema_dead_code, self.embed_avg)
            )
            self.cluster_size.masked_fill_(dead, self.threshold_ema_dead_code)
            _broadcast(self.embed, self.embed_avg, self.cluster_size)
        return n_dead

    @torch.no_grad()
    def _ema_update(self, x: torch.Tensor, codes: torch.Tensor) -> None:
        onehot = F.one_hot(codes, self.codebook_size).to(x.dtype)  # [N, K]
        counts = _all_reduce_mean(onehot.sum(0))
        embed_sum = _all_reduce_mean(onehot.t() @ x)  # [K, D]
        self.cluster_size.lerp_(counts, 1 - self.decay)
        self.embed_avg.lerp_(embed_sum, 1 - self.decay)
        # Laplace smoothing keeps unused codes from dividing by zero.
        total = self.cluster_size.sum()
        smoothed = (self.cluster_size + self.epsilon) / (total + self.codebook_size * self.epsilon)
        self.embed.copy_(self.embed_avg / (smoothed * total)[:, None])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Quantize ``x [N, D]`` -> (codewords ``[N, D]``, codes ``[N]``); updates in training."""
        if self.training and not bool(self.inited.item()):
            self._init_kmeans(x.detach())
        codes = self.quantize(x.detach())
        quantized = self.decode(codes)  # before the codebook moves
        if self.training:
            self._ema_update(x.detach(), codes)
            # Dead codes are replaced after this batch is assigned, for the next one (as in
            # EnCodec). Replacing them first would hand a batch smaller than the codebook
            # its own vectors as codewords: with most codes dead every step (codec_tiny's
            # 200 vectors for 1024 codes) the quantizer passed its input through unchanged
            # and the decoder never trained on quantized latents.
            self._replace_dead_codes(x.detach())
        return quantized, codes


class VectorQuantizer(nn.Module):
    """One RVQ stage on ``[B, D, T]`` tensors."""

    def __init__(self, **codebook_kwargs) -> None:
        super().__init__()
        self.codebook = EuclideanCodebook(**codebook_kwargs)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``x [B, D, T]`` -> codes ``[B, T]``."""
        b, d, t = x.shape
        flat = x.permute(0, 2, 1).reshape(-1, d)
        return self.codebook.quantize(flat).view(b, t)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes ``[B, T]`` -> ``[B, D, T]``."""
        return self.codebook.decode(codes).permute(0, 2, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``x [B, D, T]`` -> (codewords ``[B, D, T]``, codes ``[B, T]``, commit loss ``[]``).

        The codewords carry no gradient; the straight-through estimator is applied once
        to the sum in :class:`ResidualVectorQuantizer` (a per-stage one would cut the
        gradient of later stages' commitment losses, EnCodec issue 25).
        """
        b, d, t = x.shape
        flat = x.permute(0, 2, 1).reshape(-1, d)
        q, codes = self.codebook(flat)
        q = q.view(b, t, d).permute(0, 2, 1)
        commit = F.mse_loss(x, q.detach()) if self.training else x.new_zeros(())
        return q.detach(), codes.view(b, t), commit


class ResidualVectorQuantizer(nn.Module):
    """Stack of ``n_q`` quantizers, each coding the residual of the previous ones."""

    def __init__(
        self,
        *,
        dim: int = 128,
        n_q: int = 8,
        bins: int = 1024,
        decay: float = 0.99,
        kmeans_init: bool = True,
        kmeans_iters: int = 50,
        threshold_ema_dead_code: float = 2.0,
        q_dropout: bool = False,
    ) -> None:
        super().__init__()
        self.n_q = n_q
        self.bins = bins
        self.dim = dim
        self.q_dropout = q_dropout
        self.layers = nn.ModuleList(
            [
                VectorQuantizer(
                    dim=dim,
                    codebook_size=bins,
                    decay=decay,
                    kmeans_init=kmeans_init,
                    kmeans_iters=kmeans_iters,
                    threshold_ema_dead_code=threshold_ema_dead_code,
                )
                for _ in range(n_q)
            ]
        )

    def bandwidth_per_quantizer(self, frame_rate: float) -> float:
        """kbps that one codebook costs at ``frame_rate`` frames per second."""
        return math.log2(self.bins) * frame_rate / 1000

    def n_q_for_bandwidth(self, frame_rate: float, bandwidth: float | None) -> int:
        """Codebooks that fit in ``bandwidth`` kbps (all of them when ``None``)."""
        if not bandwidth or bandwidth <= 0:
            return self.n_q
        # Same floor as EnCodec so imported models pick the same n_q.
        return min(
            self.n_q, int(max(1, math.floor(bandwidth / self.bandwidth_per_quantizer(frame_rate))))
        )

    def forward(self, x: torch.Tensor, *, n_q: int | None = None) -> QuantizedResult:
        """Quantize ``x [B, D, T]``. In training with ``q_dropout`` n_q is drawn in [1, n_q]."""
        n_q = n_q or self.n_q
        if self.training and self.q_dropout:
            n_q = int(torch.randint(1, n_q + 1, (1,)).item())
            if _distributed():
                # All ranks must run the same layers, or DDP waits on missing gradients.
                t = torch.tensor([n_q], device=x.device)
                dist.broadcast(t, src=0)
                n_q = int(t.item())
        residual = x
        quantized = torch.zeros_like(x)
        codes, losses = [], []
        for layer in self.layers[:n_q]:
            q, c, loss = layer(residual)
            residual = residual - q
            quantized = quantized + q
            codes.append(c)
            losses.append(loss)
        if self.training:
            quantized = x + (quantized - x).detach()  # straight-through estimator
        return QuantizedResult(
            quantized=quantized,
            codes=torch.stack(codes, dim=1),
            commit_loss=torch.stack(losses).mean(),
            n_q=n_q,
        )

    def encode(self, x: torch.Tensor, *, n_q: int | None = None) -> torch.Tensor:
        """``x [B, D, T]`` -> codes ``[B, K, T]`` int64 with ``K = n_q``."""
        residual = x
        codes = []
        for layer in self.layers[: n_q or self.n_q]:
            c = layer.encode(residual)
            residual = residual - layer.decode(c)
            codes.append(c)
        return torch.stack(codes, dim=1)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes ``[B, K, T]`` -> ``[B, D, T]``, the sum of the K codewords."""
        if codes.shape[1] > self.n_q:
            raise ValueError(f"got {codes.shape[1]} codebooks, the quantizer has {self.n_q}")
        out = self.layers[0].decode(codes[:, 0])
        for k in range(1, codes.shape[1]):
            out = out + self.layers[k].decode(codes[:, k])
        return out
