"""File-level codec operations behind the CLI: encode a WAV to ``.npz``, decode it back,
import peer weights into a codec directory.

The ``.npz`` holds ``codes`` (int16 ``[K, F]`` when the cardinality allows, else int32),
``sample_rate``, ``channels``, ``length`` (samples), ``frame_rate``, ``cardinality`` and,
for normalising codecs, ``scales`` ``[S]``. It is read with ``allow_pickle=False``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from audiogen import audio
from audiogen.codecs.model import Codec, CodecError
from audiogen.fileio import atomic_path

_NPZ_KEYS = ("codes", "sample_rate", "channels", "length", "frame_rate", "cardinality")


@dataclass
class EncodeReport:
    path: Path
    num_codebooks: int  # K
    num_frames: int  # F
    seconds: float  # duration of the encoded audio
    kbps: float  # bitrate of the codes


def load_codec(directory: str | os.PathLike, *, device: str = "cpu") -> Codec:
    """Load a codec directory ready for inference (eval, weight norm folded)."""
    return Codec.load(directory, device=device).prepare_for_inference()


def encode_file(
    src: str | os.PathLike,
    out: str | os.PathLike,
    *,
    codec: Codec,
    bandwidth: float | None = None,
) -> EncodeReport:
    """Encode audio file ``src`` (resampled / channel-mixed to the codec's) into ``out``."""
    out = Path(out)
    if out.suffix != ".npz":
        raise CodecError(f"{out}: codes are written as .npz")
    if bandwidth is not None:
        codec.set_bandwidth(bandwidth)
    wav, _ = audio.load(src, sample_rate=codec.sample_rate, channels=codec.channels)
    device = next(codec.parameters()).device
    enc = codec.encode_audio(wav[None].to(device))  # [1, C, T] -> codes [1, K, F]
    codes = enc.codes[0].cpu().numpy()
    dtype = np.int16 if codec.cardinality <= np.iinfo(np.int16).max else np.int32
    arrays = {
        "codes": codes.astype(dtype),
        "sample_rate": np.int64(codec.sample_rate),
        "channels": np.int64(codec.channels),
        "length": np.int64(enc.length),
        "frame_rate": np.int64(codec.frame_rate),
        "cardinality": np.int64(codec.cardinality),
    }
    if enc.scales is not None:
        arrays["scales"] = enc.scales[0].cpu().numpy().astype(np.float32)
    if not out.parent.is_dir():
        raise CodecError(f"{out}: output directory {out.parent} does not exist")
    with atomic_path(out) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)
    k, n = codes.shape
    seconds = enc.length / codec.sample_rate
    return EncodeReport(out, k, n, seconds, k * n * np.log2(codec.cardinality) / seconds / 1000)


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise CodecError(f"{path}: file not found")
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError) as e:
        raise CodecError(f"{path}: not a readable .npz of codes ({e})") from e
    missing = [k for k in _NPZ_KEYS if k not in data]
    if missing:
        raise CodecError(f"{path}: missing {', '.join(missing)} (not written by 'codec encode'?)")
    return data


def decode_file(src: str | os.PathLike, out: str | os.PathLike, *, codec: Codec) -> Path:
    """Decode codes written by :func:`encode_file` into audio file ``out``."""
    src = Path(src)
    data = _read_npz(src)
    codes = data["codes"]
    if int(data["sample_rate"]) != codec.sample_rate or int(data["channels"]) != codec.channels:
        raise CodecError(
            f"{src}: codes are for {int(data['sample_rate'])} Hz / {int(data['channels'])} ch, "
            f"the codec is {codec.sample_rate} Hz / {codec.channels} ch"
        )
    if codes.ndim != 2 or codes.shape[0] > codec.quantizer.n_q:
        raise CodecError(f"{src}: codes of shape {codes.shape} do not fit this codec")
    if codes.size and (codes.min() < 0 or codes.max() >= codec.cardinality):
        raise CodecError(f"{src}: codes outside [0, {codec.cardinality})")
    device = next(codec.parameters()).device
    scales = data.get("scales")
    try:
        wav = codec.decode(
            torch.from_numpy(codes.astype(np.int64))[None].to(device),
            scales=None if scales is None else torch.from_numpy(scales)[None].to(device),
            length=int(data["length"]),
        )
    except ValueError as e:  # frames / scales inconsistent with the stored length
        raise CodecError(f"{src}: {e}") from e
    return audio.save(out, wav[0].float().cpu(), codec.sample_rate)


def import_codec(kind: str, src: str | os.PathLike, out: str | os.PathLike) -> Codec:
    """Convert peer weights (``encodec`` state dict file or HF directory) and save to ``out``."""
    from audiogen.codecs import convert

    if kind == "encodec":
        codec = convert.load_encodec_checkpoint(src)
    elif kind == "hf-encodec":
        codec = convert.from_hf_encodec(src)
    else:
        raise CodecError(f"unknown import kind {kind!r} (encodec or hf-encodec)")
    codec.save(out)
    return codec
