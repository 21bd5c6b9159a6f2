"""Read LAION's own CLAP checkpoints into a transformers ``ClapModel``.

Files such as ``630k-audioset-best.pt`` or ``music_audioset_epoch_15_esc_90.14.pt``.

laion_clap saves ``{"state_dict": {"module.<name>": tensor}}`` for its ``CLAP`` module: an
HTSAT (Swin transformer) audio branch with its own STFT/mel front end, a RoBERTa text branch,
and two-layer projections. transformers' ``ClapModel`` is the same network under other
names, so the checkpoint is renamed onto it rather than ported a second time. The
architecture is read from tensor shapes (HTSAT tiny/base/large, depths, heads, window,
spectrogram size); the mel front end becomes a ``ClapFeatureExtractor`` whose filter bank is
checked against the one stored in the checkpoint.
"""

from __future__ import annotations

import math
import os
import re

import numpy as np
import torch

from audiogen.eval.embeddings.base import WeightsError, load_state

WANTS = "a laion_clap checkpoint (.pt with a 'state_dict' of the CLAP module)"

# laion CLAP's text branch is always roberta-base, whose config the checkpoint does not
# store: heads of 64 channels and LayerNorm eps 1e-5 (transformers' ClapTextConfig defaults
# to 1e-12).
ROBERTA_HEAD_DIM = 64
ROBERTA_LAYER_NORM_EPS = 1e-5
# laion's text preprocessing truncates captions to this many tokens.
TEXT_MAX_TOKENS = 77
# laion's audio front end (model_configs/HTSAT-*.json): 48 kHz, 1024-point STFT, hop 480,
# 50-14000 Hz mel bands, 10 s clips. Only the filter bank and FFT size are in the weights.
SAMPLE_RATE = 48000
HOP = 480
FMIN, FMAX = 50, 14000
CLIP_SECONDS = 10

# Renames inside one Swin block: laion (timm) name -> transformers name.
_BLOCK = {
    "norm1": "layernorm_before",
    "norm2": "layernorm_after",
    "attn.proj": "attention.output.dense",
    "attn.relative_position_bias_table": "attention.self.relative_position_bias_table",
    "attn.relative_position_index": "attention.self.relative_position_index",
    "mlp.fc1": "intermediate.dense",
    "mlp.fc2": "output.dense",
}
# Entries the transformers model has no use for: the STFT/mel kernels (the feature
# extractor computes the mel spectrogram), the AudioSet tagging head, the contrastive-loss
# MLPs, and cached masks/ids that transformers rebuilds.
_DROP = re.compile(
    r"^audio_branch\.(spectrogram_extractor|logmel_extractor|tscam_conv|head)\."
    r"|^audio_branch\.layers\.\d+\.blocks\.\d+\.attn_mask$"
    r"|^(audio|text)_transform\."
    r"|^text_branch\.embeddings\.(position_ids|token_type_ids)$"
)
# transformers buffers that are rebuilt from the config rather than read.
_DERIVED = re.compile(r"^text_model\.embeddings\.(position_ids|token_type_ids)$")


def _strip(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop the ``module.`` prefix DistributedDataParallel adds to every key."""
    if all(k.startswith("module.") for k in state):
        return {k[len("module.") :]: v for k, v in state.items()}
    return state


def _count(state, pattern: str) -> int:
    """Number of distinct indices ``N`` in keys matching ``pattern`` (which captures N)."""
    idx = {int(m.group(1)) for k in state if (m := re.match(pattern, k))}
    return max(idx) + 1 if idx else 0


def _fusion_type(state, path) -> str | None:
    """None for plain HTSAT, ``aff_2d`` for LAION's fusion checkpoints; else a WeightsError."""
    if "audio_branch.mel_conv1d.0.weight" in state:
        raise WeightsError(f"clap: {path}: 1-D feature fusion (mel_conv1d) is not supported")
    if state["audio_branch.patch_embed.proj.weight"].shape[1] != 1:
        raise WeightsError(f"clap: {path}: 'channel_map' feature fusion is not supported")
    if "audio_branch.patch_embed.mel_conv2d.weight" not in state:
        return None
    if "audio_branch.patch_embed.fusion_model.local_att.0.weight" not in state:
        raise WeightsError(f"clap: {path}: 'daf_2d' feature fusion is not supported")
    if any(k.startswith("audio_branch.patch_embed.fusion_model.local_att2.") for k in state):
        raise WeightsError(f"clap: {path}: 'iaff_2d' feature fusion is not supported")
    return "aff_2d"


def clap_config(state: dict[str, torch.Tensor], path: str | os.PathLike = "checkpoint"):
    """A ``transformers.ClapConfig`` matching a (prefix-stripped) laion CLAP state dict."""
    from transformers import ClapConfig

    if not any(k.startswith("audio_branch.patch_embed.") for k in state):
        if any(k.startswith("audio_branch.") for k in state):
            raise WeightsError(f"clap: {path}: only the HTSAT audio branch is supported (not PANN)")
        raise WeightsError(f"clap: {path} has no laion CLAP audio branch (expected {WANTS})")
    if "text_branch.embeddings.word_embeddings.weight" not in state:
        raise WeightsError(f"clap: {path}: only the RoBERTa text branch is supported")
    if state["text_branch.embeddings.token_type_embeddings.weight"].shape[0] != 1:
        raise WeightsError(f"clap: {path}: text branch is BERT, only RoBERTa is supported")

    fusion = _fusion_type(state, path)
    a = "audio_branch."
    proj = state[a + "patch_embed.proj.weight"]  # [E, 1, P, P]
    embed_dim, patch = proj.shape[0], int(proj.shape[-1])
    n_layers = _count(state, r"audio_branch\.layers\.(\d+)\.")
    stages = range(n_layers)
    depths = [_count(state, rf"audio_branch\.layers\.{i}\.blocks\.(\d+)\.") for i in stages]
    tables = [state[f"{a}layers.{i}.blocks.0.attn.relative_position_bias_table"] for i in stages]
    heads = [int(t.shape[1]) for t in tables]
    window = (math.isqrt(tables[0].shape[0]) + 1) // 2  # table has (2W-1)^2 rows
    spec_size = 256  # laion's only value; a shifted block's attention mask confirms it
    for k, v in state.items():
        if m := re.match(r"audio_branch\.layers\.(\d+)\.blocks\.\d+\.attn_mask$", k):
            grid = math.isqrt(v.shape[0]) * window  # [nW, W*W, W*W] over a grid x grid map
            spec_size = grid * 2 ** int(m.group(1)) * patch
            break
    hidden = embed_dim * 2 ** (n_layers - 1)
    if state["audio_projection.0.weight"].shape[1] != hidden:
        raise WeightsError(f"clap: {path}: audio projection does not fit the HTSAT branch")
    mlp_ratio = state[a + "layers.0.blocks.0.mlp.fc1.weight"].shape[0] / embed_dim
    num_classes = state[a + "head.weight"].shape[0] if a + "head.weight" in state else 527
    audio = dict(
        window_size=window,
        num_mel_bins=int(state[a + "bn0.weight"].shape[0]),
        spec_size=spec_size,
        patch_size=patch,
        patch_stride=[patch, patch],
        num_classes=num_classes,
        hidden_size=hidden,
        depths=depths,
        num_attention_heads=heads,
        enable_fusion=fusion is not None,
        fusion_type=fusion,
        patch_embeds_hidden_size=embed_dim,
        mlp_ratio=mlp_ratio,
        num_hidden_layers=n_layers,
    )

    t = "text_branch."
    words = state[t + "embeddings.word_embeddings.weight"]  # [V, H]
    width = int(words.shape[1])
    text = dict(
        vocab_size=int(words.shape[0]),
        hidden_size=width,
        num_hidden_layers=_count(state, r"text_branch\.encoder\.layer\.(\d+)\."),
        num_attention_heads=max(1, width // ROBERTA_HEAD_DIM),
        intermediate_size=int(state[t + "encoder.layer.0.intermediate.dense.weight"].shape[0]),
        max_position_embeddings=int(state[t + "embeddings.position_embeddings.weight"].shape[0]),
        type_vocab_size=1,
        layer_norm_eps=ROBERTA_LAYER_NORM_EPS,
    )
    return ClapConfig(
        audio_config=audio,
        text_config=text,
        projection_dim=int(state["audio_projection.2.weight"].shape[0]),
    )


def _rename(key: str, value: torch.Tensor) -> dict[str, torch.Tensor]:
    """One laion key -> its transformers key(s); fused qkv splits into three."""
    if key.startswith("text_branch."):
        return {"text_model." + key[len("text_branch.") :]: value}
    if m := re.match(r"(audio|text)_projection\.([02])\.(weight|bias)$", key):
        tower, layer, leaf = m.groups()  # Sequential(Linear, ReLU, Linear): 0 and 2
        return {f"{tower}_projection.linear{1 if layer == '0' else 2}.{leaf}": value}
    if key in ("logit_scale_a", "logit_scale_t"):
        return {key: value}
    if not key.startswith("audio_branch."):
        return {}
    rest = key[len("audio_branch.") :]
    out = "audio_model.audio_encoder."
    if rest.startswith("bn0."):
        return {out + "batch_norm." + rest[4:]: value}
    if m := re.match(r"(layers\.\d+\.blocks\.\d+\.)(.+)\.(weight|bias|relative_\w+)$", rest):
        block, name, leaf = m.groups()
        if name == "attn.qkv":  # [3E, E] -> query, key, value
            q, k, v = value.chunk(3, dim=0)
            base = out + block + "attention.self."
            return {f"{base}query.{leaf}": q, f"{base}key.{leaf}": k, f"{base}value.{leaf}": v}
        if name == "attn" and leaf.startswith("relative_position"):
            return {out + block + _BLOCK[f"attn.{leaf}"]: value}
        if name in _BLOCK:
            return {f"{out}{block}{_BLOCK[name]}.{leaf}": value}
    return {out + rest: value}  # patch_embed.*, layers.*.downsample.*, norm.*


def laion_to_transformers(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a (prefix-stripped) laion CLAP state dict to ``ClapModel``'s names."""
    out: dict[str, torch.Tensor] = {}
    for k, v in state.items():
        if not _DROP.search(k):
            out.update(_rename(k, v))
    return out


def _check_filter_bank(state, fe, path) -> None:
    """The checkpoint's mel kernel ``melW [F, M]`` must equal the feature extractor's."""
    mel = state.get("audio_branch.logmel_extractor.melW")
    if mel is None:
        return
    ours = np.asarray(fe.mel_filters_slaney, dtype=np.float64)  # [F, M]
    if mel.shape != ours.shape or not np.allclose(mel.double().numpy(), ours, atol=1e-5):
        raise WeightsError(
            f"clap: {path}: its mel filter bank {tuple(mel.shape)} is not laion's 48 kHz / "
            f"{FMIN}-{FMAX} Hz front end; this loader supports only that one"
        )


def load_laion_clap(path: str | os.PathLike):
    """``(ClapModel, ClapFeatureExtractor)`` from a laion_clap ``.pt`` checkpoint.

    Read with ``torch.load(weights_only=True)``: a file that needs unpickling of anything
    beyond tensors and plain containers is refused, not executed.
    """
    from transformers import ClapFeatureExtractor, ClapModel

    state = _strip(load_state("clap", path, WANTS))
    config = clap_config(state, path)
    stft = state.get("audio_branch.spectrogram_extractor.stft.conv_real.weight")
    n_fft = int(stft.shape[-1]) if stft is not None else 1024
    fe = ClapFeatureExtractor(
        feature_size=config.audio_config.num_mel_bins,
        sampling_rate=SAMPLE_RATE,
        hop_length=HOP,
        max_length_s=CLIP_SECONDS,
        fft_window_size=n_fft,
        frequency_min=FMIN,
        frequency_max=FMAX,
    )
    _check_filter_bank(state, fe, path)
    model = ClapModel(config)
    mapped = laion_to_transformers(state)
    want = model.state_dict()
    missing = sorted(k for k in want if k not in mapped and not _DERIVED.match(k))
    unexpected = sorted(k for k in mapped if k not in want)
    bad = [k for k in mapped if k in want and mapped[k].shape != want[k].shape]
    if missing or unexpected or bad:
        first = (missing or unexpected or bad)[0]
        raise WeightsError(
            f"clap: {path}: does not match laion's CLAP layout ({len(missing)} missing, "
            f"{len(unexpected)} unexpected, {len(bad)} mis-shaped entries, e.g. {first!r})"
        )
    model.load_state_dict(mapped, strict=False)
    return model.eval(), fe
