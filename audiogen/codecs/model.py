"""The codec: SEANet encoder + residual VQ + SEANet decoder behind one small interface.

``encode(wav [B, C, T]) -> codes [B, K, F]`` and ``decode(codes) -> wav [B, C, T']`` are
what the LM and the tokenizer see. Models trained with long-signal handling (EnCodec
48 kHz) cut the input into overlapping segments, normalise each by its RMS, and glue the
decoded segments back with a triangular cross-fade; their per-segment scales travel in
:class:`EncodedAudio`.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from audiogen.codecs.config import CodecConfig, build_codec
from audiogen.codecs.rvq import ResidualVectorQuantizer
from audiogen.codecs.seanet import (
    SEANetDecoder,
    SEANetEncoder,
    enable_fast_inference,
    fold_weight_norm,
    has_weight_norm,
)
from audiogen.errors import UserError
from audiogen.fileio import atomic_path, atomic_write_text

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
_FORMAT = "audiogen.codec"


class CodecError(UserError):
    """A codec checkpoint or setting the user can fix (missing file, bad bandwidth)."""


@dataclass
class EncodedAudio:
    """Codes plus what decoding needs to restore the exact signal."""

    codes: torch.Tensor  # [B, K, F] int64; the segments' frames, concatenated in order
    scales: torch.Tensor | None  # [B, S] per-segment RMS scale (normalising models), else None
    length: int  # T, samples of the encoded signal


@dataclass
class CodecOutput:
    """Training forward pass result."""

    audio: torch.Tensor  # [B, C, T] reconstruction, cut to the input length
    codes: torch.Tensor  # [B, K, F] int64
    commit_loss: torch.Tensor  # [] VQ commitment loss
    n_q: int  # codebooks used (random under quantizer dropout)


def overlap_add(frames: list[torch.Tensor], stride: int) -> torch.Tensor:
    """Join decoded segments ``[B, C, L_i]`` placed every ``stride`` samples -> ``[B, C, T]``.

    Each segment is weighted by a triangle peaking at its centre and the sum is divided by
    the summed weights, so a region covered by one segment is copied unchanged and an
    overlap is a linear cross-fade (EnCodec's scheme, kept for identical output).
    """
    first = frames[0]
    total = stride * (len(frames) - 1) + frames[-1].shape[-1]
    n = first.shape[-1]
    t = torch.linspace(0, 1, n + 2, device=first.device, dtype=first.dtype)[1:-1]
    weight = 0.5 - (t - 0.5).abs()
    out = first.new_zeros(*first.shape[:-1], total)
    weight_sum = first.new_zeros(total)
    for i, frame in enumerate(frames):
        n_i = frame.shape[-1]
        start = i * stride
        out[..., start : start + n_i] += weight[:n_i] * frame
        weight_sum[start : start + n_i] += weight[:n_i]
    return out / weight_sum


class Codec(nn.Module):
    """Neural audio codec: waveform ``[B, C, T]`` <-> discrete codes ``[B, K, F]``.

    Build one with :func:`audiogen.codecs.build_codec`, :meth:`Codec.tiny`,
    :meth:`Codec.load`, or an importer from :mod:`audiogen.codecs.convert`.
    """

    def __init__(
        self,
        *,
        encoder: SEANetEncoder,
        decoder: SEANetDecoder,
        quantizer: ResidualVectorQuantizer,
        config: CodecConfig,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.quantizer = quantizer
        self.config = config
        self.bandwidth: float | None = None  # kbps; None = all codebooks

    # Interface the LM and tokenizer rely on ---------------------------------------

    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    @property
    def channels(self) -> int:
        return self.config.channels

    @property
    def frame_rate(self) -> int:
        """Code frames per second."""
        return self.config.frame_rate

    @property
    def hop_length(self) -> int:
        """Samples per code frame."""
        return self.config.hop_length

    @property
    def cardinality(self) -> int:
        """Codebook size: codes are in ``[0, cardinality)``."""
        return self.config.bins

    @property
    def num_codebooks(self) -> int:
        """K, the number of codebooks :meth:`encode` emits at the current bandwidth."""
        return self.quantizer.n_q_for_bandwidth(self.frame_rate, self.bandwidth)

    def set_bandwidth(self, kbps: float | None) -> None:
        """Use only as many codebooks as fit in ``kbps`` (one of ``target_bandwidths``)."""
        if kbps is not None and kbps not in self.config.target_bandwidths:
            supported = ", ".join(f"{b:g}" for b in self.config.target_bandwidths)
            raise CodecError(f"bandwidth {kbps:g} kbps is not supported; choose one of {supported}")
        self.bandwidth = kbps

    @classmethod
    def tiny(cls, *, channels: int = 1, causal: bool = False) -> Codec:
        """Debug-size random codec for tests and CPU smoke runs."""
        return build_codec(CodecConfig.tiny(channels=channels, causal=causal))

    # Encoding / decoding ------------------------------------------------------------

    def _segments(self, length: int) -> list[tuple[int, int]]:
        """``(offset, length)`` of each segment of a ``length``-sample signal."""
        seg = self.segment_length
        if seg is None:
            return [(0, length)]
        stride = self.segment_stride
        return [(o, min(seg, length - o)) for o in range(0, length, stride)]

    @property
    def segment_length(self) -> int | None:
        if self.config.segment is None:
            return None
        return int(self.config.segment * self.sample_rate)

    @property
    def segment_stride(self) -> int:
        seg = self.segment_length
        if seg is None:
            return 1
        return max(1, int((1 - self.config.overlap) * seg))

    def _check_wav(self, wav: torch.Tensor) -> None:
        if wav.dim() != 3 or wav.shape[1] != self.channels:
            raise ValueError(f"expected wav [B, {self.channels}, T], got {tuple(wav.shape)}")
        if wav.shape[-1] == 0:
            raise ValueError("cannot encode an empty signal")

    def _normalise(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        if not self.config.normalize:
            return x, None
        # One scale for all channels (RMS of the mono mix) keeps the stereo image.
        rms = x.mean(dim=1, keepdim=True).pow(2).mean(dim=2, keepdim=True).sqrt()
        scale = rms + 1e-8  # [B, 1, 1]
        return x / scale, scale.view(-1)

    # no_grad rather than inference_mode: codes may feed an LM's autograd graph, which
    # refuses inference tensors.
    @torch.no_grad()
    def encode_audio(self, wav: torch.Tensor) -> EncodedAudio:
        """``wav [B, C, T]`` float -> :class:`EncodedAudio` with codes ``[B, K, F]``."""
        self._check_wav(wav)
        n_q = self.num_codebooks
        codes, scales = [], []
        for offset, length in self._segments(wav.shape[-1]):
            x, scale = self._normalise(wav[..., offset : offset + length])
            codes.append(self.quantizer.encode(self.encoder(x), n_q=n_q))
            if scale is not None:
                scales.append(scale)
        return EncodedAudio(
            codes=torch.cat(codes, dim=-1),
            scales=torch.stack(scales, dim=1) if scales else None,
            length=wav.shape[-1],
        )

    def encode(self, wav: torch.Tensor) -> torch.Tensor:
        """``wav [B, C, T]`` -> codes ``[B, K, F]`` int64, ``F = ceil(T / hop)`` per segment.

        Normalising models also need the scales to restore loudness; use
        :meth:`encode_audio` for those.
        """
        return self.encode_audio(wav).codes

    def _frames_per_segment(self, n_frames: int, length: int | None) -> list[int]:
        if self.segment_length is None:
            return [n_frames]
        if length is not None:
            counts = [math.ceil(n / self.hop_length) for _, n in self._segments(length)]
            if sum(counts) != n_frames:
                raise ValueError(f"{n_frames} frames do not match a {length}-sample signal")
            return counts
        # Without the length, assume full segments and a shorter last one.
        full = math.ceil(self.segment_length / self.hop_length)
        return [min(full, n_frames - s) for s in range(0, n_frames, full)]

    @torch.no_grad()
    def decode(
        self,
        codes: torch.Tensor,
        *,
        scales: torch.Tensor | None = None,
        length: int | None = None,
    ) -> torch.Tensor:
        """codes ``[B, K, F]`` -> wav ``[B, C, T]``.

        ``T`` is ``length`` when given, else what the decoder produces (``F * hop`` for
        unsegmented models; it may exceed the encoded signal). ``scales [B, S]`` restores
        each segment's loudness; without them normalised segments come back at unit RMS.
        """
        if codes.dim() != 3:
            raise ValueError(f"expected codes [B, K, F], got {tuple(codes.shape)}")
        counts = self._frames_per_segment(codes.shape[-1], length)
        if scales is not None and scales.shape[-1] != len(counts):
            raise ValueError(f"{scales.shape[-1]} scales for {len(counts)} segments")
        outs, start = [], 0
        for i, n in enumerate(counts):
            out = self.decoder(self.quantizer.decode(codes[..., start : start + n]))
            if scales is not None:
                out = out * scales[:, i].view(-1, 1, 1)
            outs.append(out)
            start += n
        wav = outs[0] if len(outs) == 1 else overlap_add(outs, self.segment_stride)
        return wav if length is None else wav[..., :length]

    def decode_audio(self, encoded: EncodedAudio) -> torch.Tensor:
        """Inverse of :meth:`encode_audio`: ``[B, C, T]`` with T the original length."""
        return self.decode(encoded.codes, scales=encoded.scales, length=encoded.length)

    def forward(self, wav: torch.Tensor, *, quantize: bool = True) -> CodecOutput:
        """Training pass on ``wav [B, C, T]`` (no segmentation: batches are already windows).

        ``quantize=False`` decodes the encoder's output itself (an autoencoder warm-up):
        the quantizer still assigns codes and, in training, moves its codebooks, but adds
        no noise and no commitment loss.
        """
        self._check_wav(wav)
        x, scale = self._normalise(wav)
        latent = self.encoder(x)
        q = self.quantizer(latent, n_q=self.num_codebooks)
        audio = self.decoder(q.quantized if quantize else latent)[..., : wav.shape[-1]]
        if scale is not None:
            audio = audio * scale.view(-1, 1, 1)
        commit = q.commit_loss if quantize else torch.zeros_like(q.commit_loss)
        return CodecOutput(audio=audio, codes=q.codes, commit_loss=commit, n_q=q.n_q)

    # Inference preparation and checkpoints --------------------------------------------

    def prepare_for_inference(self) -> Codec:
        """Eval mode, weight norm folded, fast inference paths on (outputs within float
        rounding of the plain path). Call again after changing weights."""
        fold_weight_norm(self)
        enable_fast_inference(self)
        return self.eval()

    def save(self, directory: str | os.PathLike) -> Path:
        """Write ``config.json`` and ``model.safetensors`` into ``directory`` (atomically)."""
        from safetensors.torch import save_file

        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        with atomic_path(out / WEIGHTS_FILE) as tmp:
            save_file(state, str(tmp), metadata={"format": _FORMAT})
        meta = {
            "format": _FORMAT,
            "version": 1,
            "bandwidth": self.bandwidth,
            "weight_norm_folded": self.config.norm == "weight_norm" and not has_weight_norm(self),
            "codec": self.config.to_dict(),
        }
        atomic_write_text(out / CONFIG_FILE, json.dumps(meta, indent=2) + "\n")
        return out

    @classmethod
    def load(cls, directory: str | os.PathLike, *, device: str | torch.device = "cpu") -> Codec:
        """Load a codec saved by :meth:`save`; returns it in eval mode.

        A missing or unreadable file is a :class:`CodecError` naming it.
        """
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        root = Path(directory)
        if not root.is_dir():
            raise CodecError(f"{root}: codec directory not found")
        cfg_path, weights_path = root / CONFIG_FILE, root / WEIGHTS_FILE
        for p in (cfg_path, weights_path):
            if not p.is_file():
                raise CodecError(
                    f"{p}: missing (a codec directory holds {CONFIG_FILE} and {WEIGHTS_FILE})"
                )
        try:
            meta = json.loads(cfg_path.read_text(encoding="utf-8"))
            if meta.get("format") != _FORMAT:
                raise ValueError(f"format is {meta.get('format')!r}, expected {_FORMAT!r}")
            config = CodecConfig.from_dict(meta["codec"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise CodecError(f"{cfg_path}: not a valid codec config ({e})") from e
        try:
            state = load_file(str(weights_path), device=str(device))
        except (OSError, SafetensorError, ValueError, RuntimeError) as e:
            raise CodecError(f"{weights_path}: cannot read weights ({e})") from e
        model = build_codec(config)
        if meta.get("weight_norm_folded"):
            fold_weight_norm(model)
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise CodecError(
                f"{weights_path}: weights do not match {cfg_path} "
                f"(missing {missing[:3]}, unexpected {unexpected[:3]})"
            )
        model.bandwidth = meta.get("bandwidth")
        return model.to(device).eval()
