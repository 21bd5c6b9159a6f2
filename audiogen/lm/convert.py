"""Import HF transformers MusicGen / MusicGen-melody decoder weights into :class:`MusicLM`.

Accepts a model object (``MusicgenForCausalLM``, ``MusicgenForConditionalGeneration``,
``MusicgenMelodyForCausalLM``, ``MusicgenMelodyForConditionalGeneration``) or a local
directory written by ``save_pretrained`` (``config.json`` + ``model.safetensors`` or a
sharded ``model.safetensors.index.json``). Pickled ``.bin`` weights are refused.

Besides the LM, the text projection ``enc_to_dec_proj`` (T5 width -> LM width) and, for
melody models, ``audio_enc_to_dec_proj`` (12 chroma bins -> LM width) are returned so the
conditioners can load them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from audiogen.errors import UserError

from .config import LMConfig
from .model import MusicLM
from .patterns import stereo_delays

_DECODER_MARK = "model.decoder.layer_norm.weight"


@dataclass
class ImportedMusicGen:
    """Result of :func:`from_hf_musicgen`.

    lm: the audiogen LM with HF's decoder weights. config: its LMConfig.
    kind: ``"musicgen"`` or ``"musicgen_melody"``. text_proj / audio_proj: ``{"weight":
    [D, Din], "bias": [D]}`` or None (absent when the encoder width equals D).
    hf_config: the HF config as a dict (the composite config when one was given).
    """

    lm: MusicLM
    config: LMConfig
    kind: str
    text_proj: dict[str, torch.Tensor] | None = None
    audio_proj: dict[str, torch.Tensor] | None = None
    hf_config: dict[str, Any] = field(default_factory=dict)


def lm_config_from_hf(hf_config: dict[str, Any]) -> tuple[LMConfig, str]:
    """Map a HF MusicGen(-melody) config dict (composite or decoder-only) to LMConfig."""
    model_type = hf_config.get("model_type", "")
    dec = hf_config.get("decoder", hf_config)
    if not isinstance(dec, dict) or "num_codebooks" not in dec:
        raise UserError(f"config.json: model_type {model_type!r} is not a MusicGen config")
    kind = "musicgen_melody" if "melody" in (model_type + dec.get("model_type", "")) else "musicgen"
    act = dec.get("activation_function", "gelu")
    if act != "gelu":
        raise UserError(f"config.json: activation_function {act!r} is not supported (only gelu)")
    k = int(dec["num_codebooks"])
    delays = stereo_delays(k) if int(dec.get("audio_channels", 1)) == 2 else None
    cfg = LMConfig(
        num_codebooks=k,
        cardinality=int(dec["vocab_size"]),
        dim=int(dec["hidden_size"]),
        num_heads=int(dec["num_attention_heads"]),
        num_layers=int(dec["num_hidden_layers"]),
        ffn_dim=int(dec["ffn_dim"]),
        cross_attention=kind == "musicgen",
        delays=delays,
        max_positions=int(dec.get("max_position_embeddings", 2048)),
    )
    return cfg, kind


def read_safetensors(directory: Path, wanted: callable) -> dict[str, torch.Tensor]:
    """Read the tensors whose names satisfy ``wanted`` from (possibly sharded) safetensors."""
    from safetensors import safe_open

    single = directory / "model.safetensors"
    index = directory / "model.safetensors.index.json"
    if single.is_file():
        files = [single]
    elif index.is_file():
        try:
            weight_map = json.loads(index.read_text())["weight_map"]
        except (json.JSONDecodeError, KeyError) as e:
            raise UserError(f"{index}: not a valid safetensors index ({e})") from e
        files = [directory / name for name in sorted(set(weight_map.values()))]
    else:
        pickled = [p.name for p in directory.glob("*.bin")]
        hint = f" (found {', '.join(pickled)}: pickled weights are refused)" if pickled else ""
        raise UserError(f"{single}: missing; MusicGen weights must be safetensors{hint}")
    out: dict[str, torch.Tensor] = {}
    for f in files:
        if not f.is_file():
            raise UserError(f"{f}: missing (listed in {index.name})")
        try:
            with safe_open(str(f), framework="pt") as st:
                for name in st.keys():
                    if wanted(name):
                        out[name] = st.get_tensor(name)
        except UserError:
            raise
        except Exception as e:  # safetensors raises several types for a corrupt file
            raise UserError(f"{f}: cannot read safetensors ({e})") from e
    return out


def _load_source(source: Any) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(state dict restricted to decoder + projections, HF config dict) from a dir or model."""

    def wanted(name: str) -> bool:
        return "model.decoder." in name or "lm_heads." in name or "enc_to_dec_proj." in name

    if isinstance(source, str | os.PathLike):
        directory = Path(source)
        cfg_path = directory / "config.json"
        if not directory.is_dir():
            raise UserError(f"{directory}: not a directory")
        if not cfg_path.is_file():
            raise UserError(f"{cfg_path}: missing")
        try:
            hf_config = json.loads(cfg_path.read_text())
        except json.JSONDecodeError as e:
            raise UserError(f"{cfg_path}: invalid JSON ({e})") from e
        return read_safetensors(directory, wanted), hf_config
    if isinstance(source, torch.nn.Module) and hasattr(source, "config"):
        sd = {k: v.detach() for k, v in source.state_dict().items() if wanted(k)}
        return sd, source.config.to_dict()
    raise TypeError(f"expected a path or a HF MusicGen model, got {type(source).__name__}")


def convert_state_dict(sd: dict[str, torch.Tensor], config: LMConfig) -> dict[str, torch.Tensor]:
    """Rename/fuse HF decoder tensors into MusicLM's state dict; every tensor must be used."""
    marks = [k[: -len(_DECODER_MARK)] for k in sd if k.endswith(_DECODER_MARK)]
    if len(marks) != 1:
        raise UserError("weights: no MusicGen decoder found (expected '...model.decoder.*' keys)")
    root = marks[0]
    dec = root + "model.decoder."
    used: set[str] = set()

    def take(name: str) -> torch.Tensor:
        if name not in sd:
            raise UserError(f"weights: missing tensor {name!r}")
        used.add(name)
        return sd[name]

    out: dict[str, torch.Tensor] = {}
    for k in range(config.num_codebooks):
        out[f"embed.{k}.weight"] = take(f"{dec}embed_tokens.{k}.weight")
    for i in range(config.num_layers):
        src, dst = f"{dec}layers.{i}.", f"layers.{i}."
        for hf_norm, ours in (
            ("self_attn_layer_norm", "norm_self"),
            ("final_layer_norm", "norm_ffn"),
        ) + ((("encoder_attn_layer_norm", "norm_cross"),) if config.cross_attention else ()):
            out[f"{dst}{ours}.weight"] = take(f"{src}{hf_norm}.weight")
            out[f"{dst}{ours}.bias"] = take(f"{src}{hf_norm}.bias")
        sa = f"{src}self_attn."
        out[f"{dst}self_attn.in_proj.weight"] = torch.cat(
            [take(f"{sa}{p}_proj.weight") for p in "qkv"], dim=0
        )
        out[f"{dst}self_attn.out_proj.weight"] = take(f"{sa}out_proj.weight")
        if config.cross_attention:
            ca = f"{src}encoder_attn."
            out[f"{dst}cross_attn.q_proj.weight"] = take(f"{ca}q_proj.weight")
            out[f"{dst}cross_attn.kv_proj.weight"] = torch.cat(
                [take(f"{ca}k_proj.weight"), take(f"{ca}v_proj.weight")], dim=0
            )
            out[f"{dst}cross_attn.out_proj.weight"] = take(f"{ca}out_proj.weight")
        out[f"{dst}ffn.fc1.weight"] = take(f"{src}fc1.weight")
        out[f"{dst}ffn.fc2.weight"] = take(f"{src}fc2.weight")
    out["out_norm.weight"] = take(f"{dec}layer_norm.weight")
    out["out_norm.bias"] = take(f"{dec}layer_norm.bias")
    out["heads.weight"] = torch.cat(
        [take(f"{root}lm_heads.{k}.weight") for k in range(config.num_codebooks)], dim=0
    )
    leftover = sorted(
        n for n in sd if (n.startswith(dec) or n.startswith(root + "lm_heads.")) and n not in used
    )
    if leftover:
        raise UserError(f"weights: unexpected decoder tensors {leftover[:5]}")
    return out


def _projection(sd: dict[str, torch.Tensor], name: str) -> dict[str, torch.Tensor] | None:
    keys = {k: v for k, v in sd.items() if k.startswith(name + ".") and "decoder." not in k}
    if not keys:
        return None
    return {k[len(name) + 1 :]: v for k, v in keys.items()}


def from_hf_musicgen(source: str | os.PathLike | torch.nn.Module) -> ImportedMusicGen:
    """Load a HF MusicGen / MusicGen-melody (composite or decoder-only) into audiogen.

    source: a local ``save_pretrained`` directory or a HF model object. Nothing downloads.
    Returns the LM (fp32, eval mode), its config and the condition projections.
    """
    sd, hf_config = _load_source(source)
    config, kind = lm_config_from_hf(hf_config)
    lm = MusicLM(config=config)
    lm.load_state_dict(convert_state_dict(sd, config), strict=True)
    lm.float().eval()
    return ImportedMusicGen(
        lm=lm,
        config=config,
        kind=kind,
        text_proj=_projection(sd, "enc_to_dec_proj"),
        audio_proj=_projection(sd, "audio_enc_to_dec_proj"),
        hf_config=hf_config,
    )
