"""Read audiocraft's exported MusicGen checkpoints (``state_dict.bin``) into :class:`MusicLM`.

audiocraft's ``audiocraft.utils.export.export_lm`` writes, with ``torch.save``, a dict::

    {"best_state": {name: tensor},      # the LMModel state dict (conditioners included)
     "xp.cfg": "<YAML>",                 # OmegaConf.to_yaml of the training config
     "version": "1.x", "exported": True}

``export_encodec`` / ``export_pretrained_compression_model`` write
``compression_state_dict.bin`` the same way, or ``{"pretrained": "facebook/encodec_32khz",
...}`` when the codec is a released one (what MusicGen's own exports hold). Those files are
read with ``torch.load(weights_only=True)``: plain dicts, strings and tensors only; a file
that needs arbitrary unpickling (a raw training checkpoint with OmegaConf objects) is
refused. The YAML is parsed with PyYAML, and ``${a.b}`` interpolations are resolved here.

audiocraft LM names -> audiogen names (audiocraft/models/lm.py, modules/transformer.py)::

    emb.K.weight                                  -> embed.K.weight
    transformer.layers.N.self_attn.in_proj_weight -> layers.N.self_attn.in_proj.weight
        (``self_attn.mha.in_proj_weight`` when audiocraft used torch's MultiheadAttention)
    transformer.layers.N.self_attn.out_proj.weight -> layers.N.self_attn.out_proj.weight
    transformer.layers.N.cross_attention.in_proj_weight [q; k; v]
        -> layers.N.cross_attn.q_proj.weight [q], layers.N.cross_attn.kv_proj.weight [k; v]
    transformer.layers.N.cross_attention.out_proj.weight -> layers.N.cross_attn.out_proj.weight
    transformer.layers.N.linear1 / linear2        -> layers.N.ffn.fc1 / fc2
    transformer.layers.N.norm1 / norm_cross / norm2 -> layers.N.norm_self / norm_cross / norm_ffn
    out_norm                                      -> out_norm
    linears.K.weight                              -> rows of heads.weight
    condition_provider.conditioners.description.output_proj -> the text projection
    condition_provider.conditioners.description.t5.*        -> fine-tuned T5 weights (if any)

Only MusicGen's architecture is accepted (pre-norm, no biases, sinusoidal positions, GELU,
delay or parallel pattern, T5 text by cross-attention); anything else is a UserError naming
the setting. Semantics that differ: audiocraft cross-attends to padded text positions
(zero embeddings) whereas audiogen, like HF, masks them; outputs agree whenever the prompts
of a batch have no padding (one prompt, or prompts of the same token length).
"""

from __future__ import annotations

import os
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from audiogen.errors import UserError

from .config import LMConfig
from .model import MusicLM

LM_FILE = "state_dict.bin"
CODEC_FILE = "compression_state_dict.bin"
_TEXT = "condition_provider.conditioners.description."


@dataclass
class AudiocraftPackage:
    """One exported audiocraft file. cfg: the parsed, interpolation-resolved ``xp.cfg``
    (empty for a ``pretrained`` reference); state: ``best_state`` (empty for a reference);
    pretrained: the referenced model name, or None."""

    path: Path
    cfg: dict[str, Any] = field(default_factory=dict)
    state: dict[str, torch.Tensor] = field(default_factory=dict)
    pretrained: str | None = None
    version: str | None = None


def read_package(path: str | os.PathLike) -> AudiocraftPackage:
    """Read an exported audiocraft ``.bin`` with ``torch.load(weights_only=True)``."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{p}: missing")
    try:
        pkg = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise UserError(
            f"{p}: needs unpickling of arbitrary objects, refused (only tensors, dicts and "
            f"strings are read; export it with audiocraft.utils.export first) [{first[:120]}]"
        ) from None
    except Exception as e:  # truncated / not a torch file
        raise UserError(f"{p}: cannot read ({type(e).__name__}: {str(e)[:160]})") from None
    if not isinstance(pkg, dict):
        raise UserError(f"{p}: not an audiocraft export (a {type(pkg).__name__}, not a dict)")
    version = pkg.get("version")
    if "pretrained" in pkg:
        return AudiocraftPackage(path=p, pretrained=str(pkg["pretrained"]), version=version)
    if "best_state" not in pkg or "xp.cfg" not in pkg:
        raise UserError(
            f"{p}: not an audiocraft export (no 'best_state' / 'xp.cfg'; keys {sorted(pkg)[:6]})"
        )
    state = pkg["best_state"]
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]  # a training checkpoint's best_state wrapper
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError(f"{p}: 'best_state' is not a dict of tensors")
    return AudiocraftPackage(path=p, cfg=parse_cfg(pkg["xp.cfg"], p), state=state, version=version)


def parse_cfg(text: Any, source: Path) -> dict[str, Any]:
    """``xp.cfg`` (a YAML string, or already a dict) -> dict with ``${...}`` resolved."""
    import yaml

    if isinstance(text, dict):
        cfg = text
    else:
        try:
            cfg = yaml.safe_load(str(text))
        except yaml.YAMLError as e:
            raise UserError(f"{source}: 'xp.cfg' is not valid YAML ({e})") from None
    if not isinstance(cfg, dict):
        raise UserError(f"{source}: 'xp.cfg' is not a mapping")
    return _resolve(cfg, cfg)


_REF = re.compile(r"\$\{([A-Za-z0-9_.]+)\}")


def _lookup(root: dict, dotted: str) -> Any:
    node: Any = root
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _resolve(node: Any, root: dict, depth: int = 0) -> Any:
    """Resolve OmegaConf-style ``${a.b}`` references (unknown ones stay as they are)."""
    if depth > 20:
        return node
    if isinstance(node, dict):
        return {k: _resolve(v, root, depth) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve(v, root, depth) for v in node]
    if isinstance(node, str):
        whole = _REF.fullmatch(node)
        if whole:
            value = _lookup(root, whole.group(1))
            return node if value is None else _resolve(value, root, depth + 1)
        return _REF.sub(lambda m: str(_lookup(root, m.group(1)) or m.group(0)), node)
    return node


def _section(cfg: dict, name: str, source: Path) -> dict:
    value = cfg.get(name)
    if not isinstance(value, dict):
        raise UserError(f"{source}: 'xp.cfg' has no '{name}' section")
    return value


def _require(ok: bool, source: Path, what: str) -> None:
    if not ok:
        raise UserError(f"{source}: {what} is not supported (only MusicGen's architecture)")


def lm_config_from_audiocraft(cfg: dict[str, Any], source: Path) -> LMConfig:
    """Translate audiocraft's ``transformer_lm`` / ``codebooks_pattern`` / ``fuser`` config."""
    if cfg.get("lm_model", "transformer_lm") != "transformer_lm":
        raise UserError(f"{source}: lm_model {cfg.get('lm_model')!r} is not transformer_lm")
    tl = _section(cfg, "transformer_lm", source)
    get = lambda key, default=None: tl.get(key, default)  # noqa: E731
    _require(bool(get("norm_first", False)), source, "transformer_lm.norm_first=false (post-norm)")
    for key in ("bias_ff", "bias_attn", "bias_proj"):
        _require(not get(key, True), source, f"transformer_lm.{key}=true")
    _require(get("layer_scale") is None, source, "transformer_lm.layer_scale")
    _require(get("positional_embedding", "sin") == "sin", source, "rope positional embeddings")
    _require(float(get("max_period", 10000)) == 10000, source, "max_period != 10000")
    _require(float(get("positional_scale", 1.0)) == 1.0, source, "positional_scale != 1")
    _require(get("activation", "gelu") == "gelu", source, f"activation {get('activation')!r}")
    _require(get("norm", "layer_norm") == "layer_norm", source, f"norm {get('norm')!r}")
    _require(not get("qk_layer_norm", False), source, "qk_layer_norm")
    _require(not get("qk_layer_norm_cross", False), source, "qk_layer_norm_cross")
    _require(int(get("kv_repeat", 1)) == 1, source, "kv_repeat > 1")
    _require(get("past_context") is None, source, "a finite past_context")

    fuser = cfg.get("fuser") or {}
    _require(not fuser.get("cross_attention_pos_emb", False), source, "cross_attention_pos_emb")
    for mode in ("sum", "input_interpolate", "prepend"):
        _require(not fuser.get(mode), source, f"fuser.{mode}={fuser.get(mode)} (melody/other)")
    cross = list(fuser.get("cross") or [])
    _require(cross in ([], ["description"]), source, f"fuser.cross={cross}")

    n_q = int(get("n_q"))
    pattern = cfg.get("codebooks_pattern") or {}
    modeling = pattern.get("modeling") or get("q_modeling")
    if modeling == "delay":
        d = pattern.get("delay") or {}
        delays = [int(x) for x in d.get("delays", list(range(n_q)))]
        _require(not d.get("flatten_first") and not d.get("empty_initial"), source, "delay flags")
    elif modeling == "parallel":
        delays = [0] * n_q
    else:
        raise UserError(f"{source}: codebooks_pattern {modeling!r} is not supported")
    dim = int(get("dim"))
    return LMConfig(
        num_codebooks=n_q,
        cardinality=int(get("card")),
        dim=dim,
        num_heads=int(get("num_heads")),
        num_layers=int(get("num_layers")),
        ffn_dim=int(float(get("hidden_scale", 4)) * dim),
        cross_attention=bool(cross) or bool(get("cross_attention", False)),
        delays=None if delays == list(range(n_q)) else delays,
    )


@dataclass
class ImportedAudiocraftLM:
    """lm: MusicLM (fp32, eval). text_proj: ``{"weight", "bias"}`` of the T5 projection.
    text_encoder_state: fine-tuned T5 weights stored in the export (HF T5EncoderModel names),
    or empty. t5_name: the T5 the config names (e.g. ``t5-base``); cfg: the parsed config."""

    lm: MusicLM
    config: LMConfig
    text_proj: dict[str, torch.Tensor] | None
    text_encoder_state: dict[str, torch.Tensor]
    t5_name: str | None
    cfg: dict[str, Any]


def convert_lm_state(
    state: dict[str, torch.Tensor], config: LMConfig, source: Path
) -> dict[str, torch.Tensor]:
    """Rename / split audiocraft LM tensors into MusicLM's names; every LM tensor is used."""
    sd = {k.replace(".mha.", "."): v for k, v in state.items()}
    used: set[str] = set()
    d = config.dim

    def take(name: str) -> torch.Tensor:
        if name not in sd:
            raise UserError(f"{source}: missing tensor {name!r}")
        used.add(name)
        return sd[name].float()

    out: dict[str, torch.Tensor] = {}
    for k in range(config.num_codebooks):
        out[f"embed.{k}.weight"] = take(f"emb.{k}.weight")
    norms = [("norm1", "norm_self"), ("norm2", "norm_ffn")]
    if config.cross_attention:
        norms.append(("norm_cross", "norm_cross"))
    for i in range(config.num_layers):
        src, dst = f"transformer.layers.{i}.", f"layers.{i}."
        for theirs, ours in norms:
            for p in ("weight", "bias"):
                out[f"{dst}{ours}.{p}"] = take(f"{src}{theirs}.{p}")
        out[f"{dst}self_attn.in_proj.weight"] = take(f"{src}self_attn.in_proj_weight")
        out[f"{dst}self_attn.out_proj.weight"] = take(f"{src}self_attn.out_proj.weight")
        if config.cross_attention:
            w = take(f"{src}cross_attention.in_proj_weight")
            out[f"{dst}cross_attn.q_proj.weight"] = w[:d]
            out[f"{dst}cross_attn.kv_proj.weight"] = w[d:]
            out[f"{dst}cross_attn.out_proj.weight"] = take(f"{src}cross_attention.out_proj.weight")
        out[f"{dst}ffn.fc1.weight"] = take(f"{src}linear1.weight")
        out[f"{dst}ffn.fc2.weight"] = take(f"{src}linear2.weight")
    out["out_norm.weight"] = take("out_norm.weight")
    out["out_norm.bias"] = take("out_norm.bias")
    out["heads.weight"] = torch.cat(
        [take(f"linears.{k}.weight") for k in range(config.num_codebooks)], dim=0
    )
    leftover = sorted(n for n in sd if n not in used and not n.startswith(_TEXT))
    if leftover:
        raise UserError(f"{source}: unexpected tensors {leftover[:5]} (not MusicGen's layout)")
    return out


def from_audiocraft_lm(path: str | os.PathLike) -> ImportedAudiocraftLM:
    """Load an exported ``state_dict.bin`` (a file, or a directory holding one)."""
    p = Path(path)
    if p.is_dir():
        p = p / LM_FILE
    pkg = read_package(p)
    if pkg.pretrained is not None:
        raise UserError(f"{p}: refers to the pretrained model {pkg.pretrained!r}, no weights")
    cfg = pkg.cfg
    config = lm_config_from_audiocraft(cfg, p)
    lm = MusicLM(config=config)
    lm.load_state_dict(convert_lm_state(pkg.state, config, p), strict=True)
    lm.float().eval()

    conds = cfg.get("conditioners") or {}
    t5_name = None
    if config.cross_attention:
        desc = conds.get("description") if isinstance(conds, dict) else None
        if not isinstance(desc, dict) or desc.get("model") != "t5":
            raise UserError(f"{p}: the 'description' conditioner is not T5 (not supported)")
        t5_name = (desc.get("t5") or {}).get("name")
    proj = {
        k[len(_TEXT + "output_proj.") :]: v.float()
        for k, v in pkg.state.items()
        if k.startswith(_TEXT + "output_proj.")
    }
    enc_prefix = _TEXT + "t5."
    enc = {k[len(enc_prefix) :]: v for k, v in pkg.state.items() if k.startswith(enc_prefix)}
    other = [
        k
        for k in pkg.state
        if k.startswith(_TEXT) and not k.startswith((_TEXT + "output_proj.", enc_prefix))
    ]
    if other:
        raise UserError(f"{p}: unexpected text conditioner tensors {other[:5]}")
    return ImportedAudiocraftLM(
        lm=lm,
        config=config,
        text_proj=proj or None,
        text_encoder_state=enc,
        t5_name=t5_name,
        cfg=cfg,
    )
