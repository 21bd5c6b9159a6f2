"""PaSST (Koutini et al. 2022), the AudioSet tagger behind audiocraft's KL metric, from a
local checkpoint (``passt-s-f128-p16-s10-ap.476-swa.pt`` and its siblings).

PaSST is a ViT over a log-mel image: 128 kaldi mel bands of a 32 kHz signal (pre-emphasis,
800-sample Hann window, hop 320), cut into 16x16 patches with stride 10, with separate
frequency and time position embeddings (so shorter clips use the first time positions),
a class token and, in the distilled variants, a distillation token. Patch-out only acts in
training and is left out. Parameter names match the published checkpoints, which load
with ``torch.load(weights_only=True)``; shapes give the architecture.
"""

from __future__ import annotations

import math
import os
import re

import torch
import torch.nn.functional as F
from torch import nn

from audiogen import audio
from audiogen.eval.embeddings.base import WeightsError, file_digest, load_state

WANTS = "a PaSST checkpoint such as passt-s-f128-p16-s10-ap.476-swa.pt"


class MelFrontEnd(nn.Module):
    """PaSST's eval-mode log-mel: audio ``[B, T]`` at 32 kHz -> ``[B, 128, frames]``.

    Pre-emphasis ``x[t] - 0.97 x[t-1]``, centred STFT (1024 points, symmetric 800-sample
    Hann window, hop 320), power, kaldi mel banks 0-15000 Hz (the upper edge of training's
    fmax augmentation, 16 kHz - 2000/2), ``log(mel + 1e-5)``, then ``(x + 4.5) / 5``.
    """

    def __init__(self, *, n_mels: int = 128, sample_rate: int = 32000, n_fft: int = 1024,
                 win_length: int = 800, hop: int = 320, fmin: float = 0.0,
                 fmax: float = 15000.0) -> None:  # fmt: skip
        super().__init__()
        from torchaudio.compliance.kaldi import get_mel_banks

        self.n_fft, self.hop = n_fft, hop
        self.register_buffer("window", torch.hann_window(win_length, periodic=False), False)
        banks, _ = get_mel_banks(n_mels, n_fft, float(sample_rate), fmin, fmax, 100.0, -500.0, 1.0)
        self.register_buffer("mel", F.pad(banks, (0, 1)), False)  # [M, n_fft/2 + 1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, 1:] - 0.97 * x[:, :-1]  # pre-emphasis (one sample shorter)
        spec = torch.stft(x, self.n_fft, hop_length=self.hop, win_length=self.window.shape[0],
                          window=self.window, center=True, return_complex=True)  # fmt: skip
        mel = self.mel @ spec.abs().pow(2)  # [B, M, frames]
        return (torch.log(mel + 1e-5) + 4.5) / 5.0


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(norm1(x))``, then ``x + mlp(norm2(x))``."""

    def __init__(self, dim: int, heads: int, hidden: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = nn.Module()
        self.attn.qkv = nn.Linear(dim, 3 * dim)
        self.attn.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Module()
        self.mlp.fc1 = nn.Linear(dim, hidden)
        self.mlp.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        qkv = self.attn.qkv(self.norm1(x)).view(b, n, 3, self.heads, d // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each [B, H, N, d/H]
        a = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, d)
        x = x + self.attn.proj(a)
        return x + self.mlp.fc2(F.gelu(self.mlp.fc1(self.norm2(x))))


class PaSST(nn.Module):
    """Mel image ``[B, 1, 128, frames]`` -> AudioSet logits ``[B, classes]``.

    Args:
        dim: token width; heads: attention heads; depth: blocks; hidden: MLP width.
        freq_positions / time_positions: patch-grid size the position embeddings cover.
        stride: patch stride (square 16x16 patches); distilled: has a distillation token.
    """

    def __init__(self, *, dim: int = 768, heads: int = 12, depth: int = 12, hidden: int = 3072,
                 classes: int = 527, freq_positions: int = 12, time_positions: int = 99,
                 patch: int = 16, stride: int = 10, distilled: bool = True) -> None:  # fmt: skip
        super().__init__()
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(1, dim, patch, stride=stride)
        tokens = 2 if distilled else 1
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.dist_token = nn.Parameter(torch.zeros(1, 1, dim)) if distilled else None
        self.new_pos_embed = nn.Parameter(torch.zeros(1, tokens, dim))
        self.freq_new_pos_embed = nn.Parameter(torch.zeros(1, dim, freq_positions, 1))
        self.time_new_pos_embed = nn.Parameter(torch.zeros(1, dim, 1, time_positions))
        self.blocks = nn.Sequential(*[Block(dim, heads, hidden) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, classes))

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed.proj(mel)  # [B, D, F', T']
        t = x.shape[-1]
        if t > self.time_new_pos_embed.shape[-1]:
            raise ValueError(f"PaSST: {t} time patches, the model has positions for fewer")
        x = x + self.time_new_pos_embed[..., :t] + self.freq_new_pos_embed
        x = x.flatten(2).transpose(1, 2)  # [B, F'T', D], frequency-major as in PaSST
        b = x.shape[0]
        special = [self.cls_token.expand(b, -1, -1) + self.new_pos_embed[:, :1]]
        if self.dist_token is not None:
            special.append(self.dist_token.expand(b, -1, -1) + self.new_pos_embed[:, 1:])
        x = self.norm(self.blocks(torch.cat([*special, x], dim=1)))
        features = x[:, : len(special)].mean(1)  # class (and distillation) token
        return self.head(features)


def passt_config(state: dict[str, torch.Tensor], path: str | os.PathLike = "checkpoint") -> dict:
    """PaSST constructor arguments read from a state dict's shapes."""
    need = ("patch_embed.proj.weight", "freq_new_pos_embed", "time_new_pos_embed", "head.1.weight")
    if any(k not in state for k in need):
        raise WeightsError(f"kl: {path} is not a PaSST state dict (expected {WANTS})")
    proj = state["patch_embed.proj.weight"]  # [D, 1, P, P]
    dim, patch = int(proj.shape[0]), int(proj.shape[-1])
    freq = int(state["freq_new_pos_embed"].shape[2])
    n_mels = 128
    # The stride is not stored: it is the one whose patch grid over 128 mel bands has as
    # many rows as there are frequency positions (10 -> 12 rows, 16 -> 8 rows).
    strides = [s for s in range(1, patch + 1) if (n_mels - patch) // s + 1 == freq == n_mels // s]
    if len(strides) != 1:
        raise WeightsError(f"kl: {path}: {freq} frequency positions do not fit 128 mel bands")
    depth = 1 + max(int(m.group(1)) for k in state if (m := re.match(r"blocks\.(\d+)\.", k)))
    return dict(
        dim=dim,
        heads=max(1, dim // 64),  # PaSST-S/L and DeiT use 64-channel heads
        depth=depth,
        hidden=int(state["blocks.0.mlp.fc1.weight"].shape[0]),
        classes=int(state["head.1.weight"].shape[0]),
        freq_positions=freq,
        time_positions=int(state["time_new_pos_embed"].shape[3]),
        patch=patch,
        stride=strides[0],
        distilled="dist_token" in state,
    )


class PasstClassifier(nn.Module):
    """Audio ``[C, T]`` at any rate -> AudioSet logits ``[classes]`` (a
    :data:`audiogen.eval.metrics.Classifier`).

    Mono at 32 kHz, split into windows the position embeddings cover (10 s for the
    published models; the last one shorter); the logits are averaged over windows.
    """

    sample_rate = 32000

    def __init__(self, net: PaSST, *, front_end: MelFrontEnd | None = None) -> None:
        super().__init__()
        self.net = net.eval()
        self.front_end = (front_end or MelFrontEnd()).eval()
        stride = net.patch_embed.proj.stride[1]
        patch = net.patch_embed.proj.kernel_size[1]
        positions = net.time_new_pos_embed.shape[-1]
        hop = self.front_end.hop
        # Centred STFT of the pre-emphasised signal: T samples give (T - 1) // hop + 1 frames;
        # windows are at most 10 s (AudioSet's clip length) and never more than the time
        # positions cover; at least one patch of frames.
        most = ((positions - 1) * stride + patch + stride - 1) * hop
        self.window = min(10 * self.sample_rate, most)
        self.shortest = (patch - 1) * hop + 2
        self.weights_digest = "none"

    @torch.inference_mode()
    def forward(self, wav: torch.Tensor, sample_rate: int) -> torch.Tensor:
        x = audio.resample(audio.convert_channels(wav.float(), 1), sample_rate, self.sample_rate)[0]
        n = max(1, math.ceil(x.shape[0] / self.window))
        device = self.net.cls_token.device
        logits = []
        for i in range(n):
            chunk = x[i * self.window : (i + 1) * self.window]
            if chunk.shape[0] < self.shortest:  # too short for one patch: pad with silence
                chunk = F.pad(chunk, (0, self.shortest - chunk.shape[0]))
            mel = self.front_end(chunk[None].to(device))  # [1, M, frames]
            logits.append(self.net(mel[:, None])[0])
        return torch.stack(logits).mean(0).float().cpu()

    @classmethod
    def from_file(cls, path: str | os.PathLike | None) -> PasstClassifier:
        """Load a PaSST checkpoint (``.pt`` via ``weights_only`` or ``.safetensors``)."""
        state = load_state("kl", path, WANTS)
        for prefix in ("net.", "module.", "model."):
            if state and all(k.startswith(prefix) for k in state):
                state = {k[len(prefix) :]: v for k, v in state.items()}
        net = PaSST(**passt_config(state, path))
        state = {k: v for k, v in state.items() if not k.startswith("head_dist.")}  # unused
        missing, unexpected = net.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise WeightsError(
                f"kl: {path}: not a PaSST layout ({len(missing)} missing, {len(unexpected)} "
                f"unexpected entries, e.g. {(missing or unexpected)[0]!r})"
            )
        clf = cls(net)
        clf.weights_digest = file_digest(path)
        return clf
