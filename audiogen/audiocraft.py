"""Import audiocraft's exported MusicGen (``state_dict.bin`` + ``compression_state_dict.bin``).

audiocraft itself is not needed (it pins torch 2.1): the files are read with
``torch.load(weights_only=True)`` (see :mod:`audiogen.lm.audiocraft` for the format and the
LM key mapping). What the export does not hold comes from local directories:

- the T5 text encoder: audiocraft loads it by name (``t5-base``) from the hub at run time,
  so the user passes ``t5=DIR``, a local HF T5 directory (``config.json``, safetensors
  weights, tokenizer files). There is no fallback: audiogen downloads nothing, and another
  encoder would not match the trained projection. Fine-tuned T5 weights stored in the
  export are loaded on top.
- the codec, when ``compression_state_dict.bin`` only names a released one
  (``{"pretrained": "facebook/encodec_32khz"}``, what MusicGen's own exports hold): the
  user passes ``codec=DIR``, a local HF EncodecModel directory or an audiogen codec
  directory. A compression model exported with weights (``best_state`` + ``xp.cfg``) is
  converted directly: audiocraft's SEANet + RVQ use the ``encodec`` package's module names,
  so :func:`audiogen.codecs.convert.from_encodec_state_dict` maps it.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import torch

from audiogen.errors import UserError
from audiogen.lm.audiocraft import CODEC_FILE, LM_FILE, from_audiocraft_lm, read_package
from audiogen.musicgen import ModelSpec, MusicGenModel, TextSpec


def is_audiocraft_export(path: str | os.PathLike) -> bool:
    """True for a directory holding ``state_dict.bin`` or for such a file itself."""
    p = Path(path)
    return (p.is_dir() and (p / LM_FILE).is_file()) or (p.is_file() and p.name == LM_FILE)


def codec_config_from_audiocraft(cfg: dict[str, Any], source: Path):
    """audiocraft's ``encodec`` / ``seanet`` / ``rvq`` config -> :class:`CodecConfig`."""
    from audiogen.codecs.config import CodecConfig

    if cfg.get("compression_model", "encodec") != "encodec":
        raise UserError(f"{source}: compression_model {cfg.get('compression_model')!r} unsupported")
    enc = cfg.get("encodec") or {}
    if enc.get("autoencoder", "seanet") != "seanet" or enc.get("quantizer", "rvq") != "rvq":
        raise UserError(f"{source}: only the seanet autoencoder with an rvq quantizer is supported")
    if enc.get("renormalize", False):
        raise UserError(f"{source}: encodec.renormalize=true is not supported")
    sea = dict(cfg.get("seanet") or {})
    enc_over, dec_over = sea.pop("encoder", None) or {}, sea.pop("decoder", None) or {}
    if dec_over.get("final_activation") is not None:
        raise UserError(f"{source}: seanet.decoder.final_activation is not supported")
    trim = float(dec_over.pop("trim_right_ratio", sea.get("trim_right_ratio", 1.0)))
    dec_over.pop("final_activation", None)
    dec_over.pop("final_activation_params", None)
    for over, side in ((enc_over, "encoder"), (dec_over, "decoder")):
        if any(sea.get(k) != v for k, v in over.items()):
            raise UserError(f"{source}: seanet.{side} overrides {sorted(over)} are not supported")
    if (
        sea.get("activation", "ELU") != "ELU"
        or float((sea.get("activation_params") or {}).get("alpha", 1.0)) != 1.0
    ):
        raise UserError(f"{source}: seanet activation other than ELU(1.0) is not supported")
    if int(sea.get("disable_norm_outer_blocks", 0)):
        raise UserError(f"{source}: seanet.disable_norm_outer_blocks is not supported")
    if sea.get("norm_params"):
        raise UserError(f"{source}: seanet.norm_params is not supported")
    rvq = cfg.get("rvq") or {}
    sample_rate = int(enc.get("sample_rate", cfg.get("sample_rate")))
    ratios = tuple(int(r) for r in sea.get("ratios", (8, 5, 4, 2)))
    n_q, bins = int(rvq.get("n_q", 8)), int(rvq.get("bins", 1024))
    frame_rate = sample_rate // math.prod(ratios)
    bandwidth = n_q * math.log2(bins) * frame_rate / 1000
    try:
        return CodecConfig(
            sample_rate=sample_rate,
            channels=int(enc.get("channels", sea.get("channels", cfg.get("channels", 1)))),
            dimension=int(sea.get("dimension", 128)),
            n_filters=int(sea.get("n_filters", 32)),
            n_residual_layers=int(sea.get("n_residual_layers", 1)),
            ratios=ratios,
            kernel_size=int(sea.get("kernel_size", 7)),
            last_kernel_size=int(sea.get("last_kernel_size", 7)),
            residual_kernel_size=int(sea.get("residual_kernel_size", 3)),
            dilation_base=int(sea.get("dilation_base", 2)),
            causal=bool(sea.get("causal", enc.get("causal", False))),
            norm=str(sea.get("norm", "weight_norm")),
            pad_mode=str(sea.get("pad_mode", "constant")),
            true_skip=bool(sea.get("true_skip", True)),
            compress=int(sea.get("compress", 2)),
            lstm_layers=int(sea.get("lstm", 0)),
            trim_right_ratio=trim,
            n_q=n_q,
            bins=bins,
            target_bandwidths=(bandwidth,),
            decay=float(rvq.get("decay", 0.99)),
            kmeans_iters=int(rvq.get("kmeans_iters", 50)),
            threshold_ema_dead_code=float(rvq.get("threshold_ema_dead_code", 2)),
            name=f"audiocraft_encodec_{sample_rate // 1000}khz",
        )
    except (TypeError, ValueError) as e:
        raise UserError(f"{source}: unsupported compression model config ({e})") from None


def _local_codec(directory: Path):
    """An HF EncodecModel directory or an audiogen codec directory."""
    from audiogen.codecs import Codec
    from audiogen.codecs.convert import from_hf_encodec

    cfg_path = directory / "config.json"
    if not cfg_path.is_file():
        raise UserError(f"{cfg_path}: missing (--codec needs a local codec directory)")
    try:
        model_type = json.loads(cfg_path.read_text()).get("model_type")
    except (json.JSONDecodeError, AttributeError) as e:
        raise UserError(f"{cfg_path}: invalid JSON ({e})") from None
    return from_hf_encodec(directory) if model_type == "encodec" else Codec.load(directory)


def load_audiocraft_codec(path: Path, codec_dir: str | os.PathLike | None, num_codebooks: int):
    """The codec of an export: converted from ``best_state`` or read from ``codec_dir``."""
    from audiogen.codecs.convert import from_encodec_state_dict

    if codec_dir is not None:
        codec = _local_codec(Path(codec_dir))
    else:
        pkg = read_package(path)
        if pkg.pretrained is not None:
            raise UserError(
                f"{path}: names the released codec {pkg.pretrained!r} without its weights; "
                f"pass --codec DIR, a local copy (HF EncodecModel directory)"
            )
        config = codec_config_from_audiocraft(pkg.cfg, path)
        state = {k: v.float() for k, v in pkg.state.items()}
        codec = from_encodec_state_dict(state, config=config, source=str(path))
    # The LM is decoded with exactly as many codebooks as it models.
    per_q = codec.quantizer.bandwidth_per_quantizer(codec.frame_rate)
    codec.bandwidth = num_codebooks * per_q * (1 + 1e-9)
    if codec.num_codebooks != num_codebooks:
        raise UserError(
            f"{path}: the LM has {num_codebooks} codebooks, the codec gives {codec.num_codebooks}"
        )
    return codec


def import_audiocraft_musicgen(
    source: str | os.PathLike,
    *,
    t5: str | os.PathLike | None = None,
    codec: str | os.PathLike | None = None,
) -> tuple[MusicGenModel, torch.nn.Module]:
    """Build audiogen's model and codec from an audiocraft export (a directory with
    ``state_dict.bin`` and ``compression_state_dict.bin``, or the ``state_dict.bin`` file).

    t5: local HF T5 directory (required for text-conditioned models). codec: local codec
    directory (required when the compression file only names a released codec).
    """
    from audiogen.conditioners.text import hf_text_conditioner

    src = Path(source)
    root = src if src.is_dir() else src.parent
    lm_path = root / LM_FILE if src.is_dir() else src
    imported = from_audiocraft_lm(lm_path)
    k = imported.config.num_codebooks
    if imported.config.cross_attention and t5 is None:
        raise UserError(
            f"{lm_path}: the text conditioner is T5 ({imported.t5_name or 't5'}); pass "
            f"--t5 DIR, a local HF T5 directory (audiogen downloads nothing)"
        )
    codec_path = root / CODEC_FILE
    if codec is None and not codec_path.is_file():
        raise UserError(f"{codec_path}: missing (or pass --codec DIR)")
    codec_model = load_audiocraft_codec(codec_path, codec, k)

    text = None
    text_spec = TextSpec(encoder="none")
    if imported.config.cross_attention:
        text = hf_text_conditioner(t5, imported.config.dim, max_length=512, name="t5", t5=True)
        if imported.text_proj is None:
            raise UserError(f"{lm_path}: no text projection (output_proj) in the export")
        try:
            text.proj.load_state_dict(imported.text_proj)
        except RuntimeError as e:
            raise UserError(
                f"{t5}: this T5 does not fit the export's projection "
                f"({str(e).splitlines()[-1].strip()[:160]})"
            ) from None
        if imported.text_encoder_state:
            missing, unexpected = text.encoder.load_state_dict(
                imported.text_encoder_state, strict=False
            )
            if unexpected or [m for m in missing if "embed_tokens" not in m]:
                raise UserError(f"{lm_path}: the fine-tuned T5 weights do not fit {t5}")
        text_spec = TextSpec(encoder="t5", path=str(Path(t5).resolve()), max_length=512)
    spec = ModelSpec(
        lm=imported.config,
        text=text_spec,
        sample_rate=codec_model.sample_rate,
        frame_rate=codec_model.frame_rate,
    )
    model = MusicGenModel(spec=spec, lm=imported.lm, text=text, melody=None)
    return model.eval(), codec_model
