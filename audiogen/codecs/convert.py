"""Import EnCodec weights: from the ``encodec`` package and from HF transformers.

Both peers use the same SEANet + RVQ architecture as :mod:`audiogen.codecs`; only module
names differ, so conversion is a key rename plus a config translation. Nothing here
downloads: sources are model objects or local files.

Peer name -> audiogen name:

- ``encodec``: ``{encoder,decoder}.model.N`` -> ``.layers.N``; ``conv.conv`` / ``convtr.convtr``
  -> ``conv``; ``conv.norm`` / ``convtr.norm`` -> ``norm``;
  ``quantizer.vq.layers.N._codebook`` -> ``quantizer.layers.N.codebook``.
- HF: identical names already.
- both: legacy weight norm ``weight_g`` / ``weight_v`` ->
  ``parametrizations.weight.original0`` / ``original1``.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from audiogen.codecs.config import CodecConfig, build_codec
from audiogen.codecs.model import Codec, CodecError

_ENCODEC_RENAMES = [
    (re.compile(r"^(encoder|decoder)\.model\."), r"\1.layers."),
    (re.compile(r"\.conv\.conv\."), ".conv."),
    (re.compile(r"\.convtr\.convtr\."), ".conv."),
    (re.compile(r"\.(conv|convtr)\.norm\."), ".norm."),
    (re.compile(r"^quantizer\.vq\.layers\.(\d+)\._codebook\."), r"quantizer.layers.\1.codebook."),
]
_WEIGHT_NORM_RENAMES = [
    (re.compile(r"\.weight_g$"), ".parametrizations.weight.original0"),
    (re.compile(r"\.weight_v$"), ".parametrizations.weight.original1"),
]


def _rename(state: dict[str, torch.Tensor], rules) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in state.items():
        for pattern, repl in rules:
            key = pattern.sub(repl, key)
        out[key] = value
    return out


def _load_into(codec: Codec, state: dict[str, torch.Tensor], source: str) -> Codec:
    """Strictly load a renamed peer state dict; a mismatch names ``source`` and the keys."""
    state = _rename(state, _WEIGHT_NORM_RENAMES)
    own = codec.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise CodecError(
            f"{source}: weights do not fit the expected EnCodec architecture "
            f"(missing {missing[:4]}{'...' if len(missing) > 4 else ''}, "
            f"unexpected {unexpected[:4]}{'...' if len(unexpected) > 4 else ''})"
        )
    for key, value in state.items():
        if own[key].shape != value.shape:
            raise CodecError(
                f"{source}: {key} has shape {tuple(value.shape)}, expected {tuple(own[key].shape)}"
            )
    codec.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()})
    return codec.eval()


# ``encodec`` package -------------------------------------------------------------------


def _encodec_config(model: nn.Module) -> CodecConfig:
    """Read the architecture of an ``encodec.EncodecModel`` from its modules."""
    enc, dec, rvq = model.encoder, model.decoder, model.quantizer
    first = enc.model[0]
    resblocks = [m for m in enc.model if hasattr(m, "block")]
    lstms = [m for m in enc.model if hasattr(m, "lstm")]
    convtr = next(m for m in dec.model if hasattr(m, "convtr"))
    kwargs: dict[str, Any] = {}
    if resblocks:
        block = resblocks[0]
        res_conv = block.block[1].conv.conv
        kwargs.update(
            residual_kernel_size=res_conv.kernel_size[0],
            compress=enc.n_filters // res_conv.out_channels,
            true_skip=isinstance(block.shortcut, nn.Identity),
        )
        if enc.n_residual_layers > 1:
            kwargs["dilation_base"] = resblocks[1].block[1].conv.conv.dilation[0]
    codebook = rvq.vq.layers[0]._codebook
    return CodecConfig(
        sample_rate=model.sample_rate,
        channels=model.channels,
        dimension=enc.dimension,
        n_filters=enc.n_filters,
        n_residual_layers=enc.n_residual_layers,
        ratios=tuple(int(r) for r in dec.ratios),
        kernel_size=first.conv.conv.kernel_size[0],
        last_kernel_size=enc.model[-1].conv.conv.kernel_size[0],
        causal=first.causal,
        norm=first.conv.norm_type,
        pad_mode=first.pad_mode,
        lstm_layers=lstms[0].lstm.num_layers if lstms else 0,
        trim_right_ratio=convtr.trim_right_ratio,
        n_q=rvq.n_q,
        bins=rvq.bins,
        target_bandwidths=tuple(model.target_bandwidths),
        decay=codebook.decay,
        kmeans_iters=codebook.kmeans_iters,
        threshold_ema_dead_code=codebook.threshold_ema_dead_code,
        normalize=model.normalize,
        segment=model.segment,
        overlap=model.overlap,
        name=model.name if model.name != "unset" else "encodec",
        **kwargs,
    )


def from_encodec(model: nn.Module) -> Codec:
    """Convert an ``encodec.EncodecModel`` (24 or 48 kHz) into a :class:`Codec`.

    The architecture is read from the model, the weights copied, and the model's current
    bandwidth carried over. Outputs match the peer's (codes exactly).
    """
    codec = build_codec(_encodec_config(model))
    _load_into(codec, _rename(model.state_dict(), _ENCODEC_RENAMES), "encodec model")
    codec.bandwidth = model.bandwidth
    return codec


def from_encodec_state_dict(
    state: dict[str, torch.Tensor], *, config: CodecConfig | None = None, source: str = "state dict"
) -> Codec:
    """Convert a state dict of the ``encodec`` package (e.g. ``encodec_24khz-d7cc33bc.th``).

    Without ``config`` the preset is inferred: group-norm weights mean the 48 kHz stereo
    model, otherwise the 24 kHz mono one.
    """
    state = _rename(state, _ENCODEC_RENAMES)
    if config is None:
        is_48k = any(".norm." in k for k in state)
        config = CodecConfig.encodec_48khz() if is_48k else CodecConfig.encodec_24khz()
    return _load_into(build_codec(config), state, source)


def load_encodec_checkpoint(path: str | os.PathLike) -> Codec:
    """Read an ``encodec`` state dict file: ``.safetensors``, or a torch file loaded with
    ``torch.load(weights_only=True)`` (tensors only; arbitrary pickled code is refused)."""
    src = Path(path)
    if not src.is_file():
        raise CodecError(f"{src}: file not found")
    try:
        if src.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(src))
        else:
            state = torch.load(src, map_location="cpu", weights_only=True)
    except Exception as e:  # any reader failure means an unusable file for the user
        raise CodecError(f"{src}: cannot read an encodec state dict ({e})") from e
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CodecError(f"{src}: expected a state dict of tensors")
    return from_encodec_state_dict(state, source=str(src))


# HF transformers -----------------------------------------------------------------------

# EncodecConfig defaults, for config.json files that omit keys.
_HF_DEFAULTS: dict[str, Any] = {
    "target_bandwidths": [1.5, 3.0, 6.0, 12.0, 24.0],
    "sampling_rate": 24_000,
    "audio_channels": 1,
    "normalize": False,
    "chunk_length_s": None,
    "overlap": None,
    "hidden_size": 128,
    "num_filters": 32,
    "num_residual_layers": 1,
    "upsampling_ratios": [8, 5, 4, 2],
    "norm_type": "weight_norm",
    "kernel_size": 7,
    "last_kernel_size": 7,
    "residual_kernel_size": 3,
    "dilation_growth_rate": 2,
    "use_causal_conv": True,
    "pad_mode": "reflect",
    "compress": 2,
    "num_lstm_layers": 2,
    "trim_right_ratio": 1.0,
    "codebook_size": 1024,
    "codebook_dim": None,
    "use_conv_shortcut": True,
}


def hf_config_to_codec(hf: dict[str, Any]) -> CodecConfig:
    """Translate an HF ``EncodecConfig`` dict into a :class:`CodecConfig`."""
    c = {**_HF_DEFAULTS, **{k: v for k, v in hf.items() if k in _HF_DEFAULTS}}
    if c["codebook_dim"] not in (None, c["hidden_size"]):
        raise CodecError("codebook_dim != hidden_size (projected codebooks) is not supported")
    sample_rate = int(c["sampling_rate"])
    hop = 1
    for r in c["upsampling_ratios"]:
        hop *= int(r)
    frame_rate = -(-sample_rate // hop)
    nbits = (int(c["codebook_size"]) - 1).bit_length()
    n_q = int(1000 * c["target_bandwidths"][-1] // (frame_rate * nbits))
    return CodecConfig(
        sample_rate=sample_rate,
        channels=int(c["audio_channels"]),
        dimension=int(c["hidden_size"]),
        n_filters=int(c["num_filters"]),
        n_residual_layers=int(c["num_residual_layers"]),
        ratios=tuple(c["upsampling_ratios"]),
        kernel_size=int(c["kernel_size"]),
        last_kernel_size=int(c["last_kernel_size"]),
        residual_kernel_size=int(c["residual_kernel_size"]),
        dilation_base=int(c["dilation_growth_rate"]),
        causal=bool(c["use_causal_conv"]),
        norm=c["norm_type"],
        pad_mode=c["pad_mode"],
        true_skip=not c["use_conv_shortcut"],
        compress=int(c["compress"]),
        lstm_layers=int(c["num_lstm_layers"]),
        trim_right_ratio=float(c["trim_right_ratio"]),
        n_q=n_q,
        bins=int(c["codebook_size"]),
        target_bandwidths=tuple(c["target_bandwidths"]),
        normalize=bool(c["normalize"]),
        segment=c["chunk_length_s"],
        overlap=0.01 if c["overlap"] is None else float(c["overlap"]),
        name=f"hf_encodec_{sample_rate // 1000}khz",
    )


def _read_hf_dir(root: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    cfg_path = root / "config.json"
    if not cfg_path.is_file():
        raise CodecError(f"{cfg_path}: missing (expected an HF EncodecModel directory)")
    try:
        hf_cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise CodecError(f"{cfg_path}: not valid JSON ({e})") from e
    if hf_cfg.get("model_type", "encodec") != "encodec":
        raise CodecError(f"{cfg_path}: model_type is {hf_cfg.get('model_type')!r}, not 'encodec'")
    st, pt = root / "model.safetensors", root / "pytorch_model.bin"
    try:
        if st.is_file():
            from safetensors.torch import load_file

            state = load_file(str(st))
        elif pt.is_file():
            state = torch.load(pt, map_location="cpu", weights_only=True)
        else:
            raise CodecError(f"{st}: missing (no model.safetensors or pytorch_model.bin)")
    except CodecError:
        raise
    except Exception as e:  # corrupt or truncated weights file
        raise CodecError(f"{st if st.is_file() else pt}: cannot read weights ({e})") from e
    return hf_cfg, state


def from_hf_encodec(path_or_model: str | os.PathLike | nn.Module) -> Codec:
    """Convert HF transformers' ``EncodecModel``: a model object or a local saved directory
    (``config.json`` + ``model.safetensors``, or ``pytorch_model.bin`` read with
    ``weights_only=True``). transformers is only needed for the model-object form.

    HF encodes at the smallest target bandwidth by default; the codec is set to the same.
    """
    if isinstance(path_or_model, nn.Module):
        hf_cfg = path_or_model.config.to_dict()
        state = path_or_model.state_dict()
        source = "HF EncodecModel"
    else:
        root = Path(path_or_model)
        if not root.is_dir():
            raise CodecError(f"{root}: directory not found (expected an HF EncodecModel directory)")
        hf_cfg, state = _read_hf_dir(root)
        source = str(root)
    config = hf_config_to_codec(hf_cfg)
    codec = _load_into(build_codec(config), dict(state), source)
    codec.bandwidth = config.target_bandwidths[0]
    return codec
