"""The conditioned music LM: text / melody conditioners + fuser + the MusicGen LM.

This is the trainable model (the codec stays outside, behind its interface). It turns raw
conditions into :class:`audiogen.lm.Conditions` and runs the LM; the pipeline adds the codec
for generation, and the LM training task trains it on token shards. A checkpoint is a
directory with ``config.json`` (the :class:`ModelSpec`) and ``model.safetensors``; frozen
text-encoder weights are not stored (they load from their own package or directory).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn

from audiogen.conditioners import ConditionFuser, MelodyConditioner, TextConditioner
from audiogen.conditioners.base import ConditionOutput
from audiogen.conditioners.fuser import FUSE_MODES
from audiogen.conditioners.melody import ChromaExtractor, MelodyTokens, one_hot_argmax
from audiogen.conditioners.tempo import TempoConditioner, TempoTokens, check_harmonics
from audiogen.conditioners.text import TextTokens, hf_text_conditioner, minilm_conditioner
from audiogen.errors import UserError
from audiogen.fileio import atomic_path, atomic_write_text
from audiogen.lm import Conditions, LMConfig, LMOutput, MusicLM
from audiogen.midi import REST_PITCH_CLASS

FORMAT = "audiogen-musicgen"


@dataclass
class TextSpec:
    """Text conditioning. encoder: ``minilm`` (offline default), ``t5`` or ``hf`` (a local
    directory in ``path``), or ``none``."""

    encoder: Literal["minilm", "t5", "hf", "none"] = "minilm"
    path: str | None = None
    max_length: int = 64
    fuse: Literal["cross", "prepend"] = "cross"

    def __post_init__(self) -> None:
        if self.fuse not in ("cross", "prepend"):
            raise ValueError(f"text.fuse must be 'cross' or 'prepend', got {self.fuse!r}")


@dataclass
class MelodySpec:
    """Chroma conditioning. ``chroma_rate`` is frames per second (MusicGen-melody: 32000 /
    4096); ``chroma_length`` tiles every melody to that many frames as MusicGen-melody does
    (None: the melody's own length, padded and masked).

    ``fuse``: ``prepend`` (MusicGen-melody: the chroma frames go before the tokens),
    ``cross`` (cross-attended), or ``sum``: each chroma frame is repeated onto the codec
    frames it covers and added to the LM's input at the step that predicts that frame's
    first codebook, so the LM reads the pitch where it writes the note (audiogen's own
    layout, not MusicGen's; its projection starts at zero, so an untrained melody changes
    nothing, and the null melody adds zero)."""

    enabled: bool = False
    chroma_rate: float = 12.5
    n_fft: int = 4096
    chroma_length: int | None = None
    fuse: Literal["cross", "prepend", "sum"] = "prepend"

    def __post_init__(self) -> None:
        if self.fuse not in FUSE_MODES:
            raise ValueError(
                f"melody.fuse must be one of {', '.join(FUSE_MODES)}, got {self.fuse!r}"
            )
        if self.fuse == "sum" and self.chroma_length is not None:
            raise ValueError(
                "melody.fuse = 'sum' follows the melody frame by frame; "
                "chroma_length (tiling) does not apply"
            )


@dataclass
class TempoSpec:
    """The beat clock (:mod:`audiogen.conditioners.tempo`): the tempo a prompt states,
    given to the LM frame by frame as the phase of each frame in the beat (``harmonics``:
    the beat's multiples whose phase it sees). Summed into the LM's inputs; off by default,
    and a config without this section has none."""

    enabled: bool = False
    harmonics: list[int] = field(default_factory=lambda: [1, 2, 3, 4])

    def __post_init__(self) -> None:
        check_harmonics(self.harmonics)


@dataclass
class ModelSpec:
    """Everything needed to rebuild the model: LM config, conditioners, codec facts."""

    lm: LMConfig = field(default_factory=LMConfig)
    text: TextSpec = field(default_factory=TextSpec)
    melody: MelodySpec = field(default_factory=MelodySpec)
    tempo: TempoSpec = field(default_factory=TempoSpec)
    sample_rate: int = 32000  # the codec's, for chroma from audio
    frame_rate: float = 50.0  # the codec's, to map durations to frames

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def codec_mismatches(self, facts: dict[str, float]) -> list[tuple[str, float, float]]:
        """``(field, value here, value in facts)`` for each codec fact (``model.`` recipe
        path of the field) that differs from ``facts``, e.g. a token directory's meta.json
        or ``dataclasses.asdict(TokenMeta.of(codec))``; a missing fact is a KeyError."""
        ours = {
            "lm.num_codebooks": ("num_codebooks", self.lm.num_codebooks),
            "lm.cardinality": ("cardinality", self.lm.cardinality),
            "sample_rate": ("sample_rate", self.sample_rate),
            "frame_rate": ("frame_rate", self.frame_rate),
        }
        return [
            (where, value, facts[key])
            for where, (key, value) in ours.items()
            if not math.isclose(float(facts[key]), float(value))
        ]

    @classmethod
    def from_dict(cls, d: dict) -> ModelSpec:
        try:
            return cls(
                lm=LMConfig.from_dict(d["lm"]),
                text=TextSpec(**d.get("text", {})),
                melody=MelodySpec(**d.get("melody", {})),
                tempo=TempoSpec(**d.get("tempo", {})),
                sample_rate=int(d["sample_rate"]),
                frame_rate=float(d["frame_rate"]),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise UserError(f"model config: bad or missing entry ({e})") from None


def build_text(spec: TextSpec, dim: int) -> TextConditioner | None:
    """The text conditioner a spec names (projection to ``dim``)."""
    if spec.encoder == "none":
        return None
    if spec.encoder == "minilm":
        return minilm_conditioner(dim, max_length=spec.max_length)
    if not spec.path:
        raise UserError(f"text encoder '{spec.encoder}' needs a local directory in text.path")
    return hf_text_conditioner(
        spec.path, dim, max_length=spec.max_length, name=spec.encoder, t5=spec.encoder == "t5"
    )


def build_melody(spec: MelodySpec, dim: int, sample_rate: int) -> MelodyConditioner | None:
    if not spec.enabled:
        return None
    extractor = ChromaExtractor(
        sample_rate=sample_rate, n_fft=spec.n_fft, frame_rate=spec.chroma_rate
    )
    melody = MelodyConditioner(
        extractor=extractor, output_dim=dim, chroma_length=spec.chroma_length
    )
    if spec.fuse == "sum":
        nn.init.zeros_(melody.proj.weight)
        nn.init.zeros_(melody.proj.bias)
    return melody


def build_tempo(spec: TempoSpec, dim: int, frame_rate: float) -> TempoConditioner | None:
    if not spec.enabled:
        return None
    return TempoConditioner(output_dim=dim, frame_rate=frame_rate, harmonics=spec.harmonics)


def chroma_from_pitch_classes(pc: np.ndarray, step: int) -> torch.Tensor:
    """Token-shard pitch classes [F] (12 = rest) → one-hot chroma [F // step, 12].

    Every ``step``-th frame group votes for its most common pitch class; rests map to bin 0,
    what MusicGen's chroma gives for silence.
    """
    n = len(pc) // step
    groups = torch.as_tensor(np.asarray(pc[: n * step], dtype=np.int64)).view(n, step)
    counts = nn.functional.one_hot(groups, REST_PITCH_CLASS + 1).sum(1).float()
    counts = counts[:, :REST_PITCH_CLASS]  # rests don't vote
    return one_hot_argmax(counts)


class MusicGenModel(nn.Module):
    """Conditioners + fuser + LM: ``forward(seq [B, K, S], cond) -> LMOutput``."""

    def __init__(
        self,
        *,
        spec: ModelSpec,
        lm: MusicLM,
        text: TextConditioner | None,
        melody: MelodyConditioner | None,
        tempo: TempoConditioner | None = None,
    ) -> None:
        super().__init__()
        self.spec = spec
        self.lm = lm
        self.text = text
        self.melody = melody
        self.tempo = tempo
        modes = {}
        if melody is not None:
            modes["melody"] = spec.melody.fuse
        if text is not None:
            modes["text"] = spec.text.fuse
        if tempo is not None:
            modes["tempo"] = "sum"
        self.fuser = ConditionFuser(modes)

    @classmethod
    def build(cls, spec: ModelSpec) -> MusicGenModel:
        """A freshly initialised model (LM and projections random, text encoder loaded)."""
        d = spec.lm.dim
        return cls(
            spec=spec,
            lm=MusicLM(config=spec.lm),
            text=build_text(spec.text, d),
            melody=build_melody(spec.melody, d, spec.sample_rate),
            tempo=build_tempo(spec.tempo, d, spec.frame_rate),
        )

    @property
    def chroma_step(self) -> int:
        """Codec frames per chroma frame (for chroma built from token-shard pitch classes)."""
        return max(1, int(round(self.spec.frame_rate / self.spec.melody.chroma_rate)))

    # -- conditions ---------------------------------------------------------------------

    def tokenize(
        self,
        texts: Sequence[str | None],
        melodies: Sequence[torch.Tensor | np.ndarray | None] | None = None,
    ) -> tuple[TextTokens | None, MelodyTokens | None]:
        """CPU-side tokenization. melodies: audio [C, T] at ``sample_rate``, chroma [F, 12],
        or None (the null melody)."""
        text = self.text.tokenize(texts) if self.text is not None else None
        mel = None
        if self.melody is not None:
            mel = self.melody.tokenize(melodies or [None] * len(texts))
        return text, mel

    def tokenize_tempo(self, texts: Sequence[str | None], num_steps: int) -> TempoTokens | None:
        """The beat clock of each text's tempo over ``num_steps`` sequence steps (frames
        plus the pattern's delay), or None when the model has no clock."""
        return None if self.tempo is None else self.tempo.tokenize(texts, num_steps)

    def encode(
        self,
        text: TextTokens | None,
        melody: MelodyTokens | None,
        tempo: TempoTokens | None = None,
        *,
        text_out: ConditionOutput | None = None,
    ) -> Conditions:
        """Run the conditioners and fuse: the LM's condition tensors. ``text_out``: the text
        conditioner's output for ``text`` when it is already at hand (it is not rerun)."""
        outs = {}
        if tempo is not None:
            outs["tempo"] = self.tempo(tempo.to(self.device))
        if text_out is not None:
            outs["text"] = text_out
        elif text is not None:
            outs["text"] = self.text(text.to(self.device))
        if melody is not None:
            melody = melody.to(self.device)
            out = self.melody(melody)
            if self.spec.melody.fuse == "sum":
                out = self._on_frames(out, melody.present)
            outs["melody"] = out
        fused = self.fuser(outs)
        dtype = self.lm.compute_dtype
        cast = lambda t: None if t is None else t.to(dtype)  # noqa: E731
        # Prefix padding (text padding inside a prepended block) stays visible to the LM,
        # as in MusicGen-melody, whose decoder sees the zeroed padded embeddings.
        return Conditions(
            cross=cast(fused.cross),
            cross_mask=fused.cross_mask,
            prefix=cast(fused.prefix),
            frame=cast(fused.frame),
        )

    def _on_frames(self, out: ConditionOutput, present: torch.Tensor) -> ConditionOutput:
        """A chroma-rate condition on the codec's frame grid (each chroma frame repeated
        over the codec frames it covers); a null melody (``present`` False) is masked out."""
        step = self.chroma_step
        mask = (out.mask & present[:, None]).repeat_interleave(step, dim=1)
        return ConditionOutput(emb=out.emb.repeat_interleave(step, dim=1), mask=mask)

    def conditions(
        self,
        texts: Sequence[str | None],
        melodies: Sequence[torch.Tensor | np.ndarray | None] | None = None,
        *,
        num_steps: int | None = None,
    ) -> Conditions:
        """Tokenize and encode in one call (generation). A model with a beat clock needs
        ``num_steps``, the sequence steps the clock must cover."""
        tempo = None
        if self.tempo is not None:
            if num_steps is None:
                raise ValueError("this model has a beat clock: give num_steps")
            tempo = self.tokenize_tempo(texts, num_steps)
        return self.encode(*self.tokenize(texts, melodies), tempo)

    @property
    def device(self) -> torch.device:
        return next(self.lm.parameters()).device

    def forward(self, seq: torch.Tensor, cond: Conditions) -> LMOutput:
        return self.lm(
            seq, cross=cond.cross, cross_mask=cond.cross_mask, prefix=cond.prefix, frame=cond.frame
        )

    # -- checkpoints --------------------------------------------------------------------

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """The weights a checkpoint stores: all but a frozen text encoder's."""
        frozen = self.text is not None and not self.text.finetune
        return {
            k: v.detach().contiguous().cpu()
            for k, v in self.state_dict().items()
            if not (frozen and k.startswith("text.encoder."))
        }

    def save(self, directory: str | os.PathLike, extra: dict | None = None) -> Path:
        """Write ``config.json`` + ``model.safetensors`` atomically."""
        from safetensors.torch import save_file

        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        with atomic_path(out / "model.safetensors") as tmp:
            save_file(self.trainable_state(), str(tmp), metadata={"format": FORMAT})
        cfg = {"format": FORMAT, "version": 1, "model": self.spec.to_dict(), **(extra or {})}
        atomic_write_text(out / "config.json", json.dumps(cfg, indent=2) + "\n")
        return out

    @classmethod
    def load(
        cls,
        directory: str | os.PathLike,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> MusicGenModel:
        """Load a model saved by :meth:`save`; missing or corrupt files are UserErrors."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        root = Path(directory)
        cfg_path, w_path = root / "config.json", root / "model.safetensors"
        for p in (cfg_path, w_path):
            if not p.is_file():
                raise UserError(
                    f"{p}: missing (a model directory holds config.json and model.safetensors)"
                )
        try:
            cfg = json.loads(cfg_path.read_text())
        except json.JSONDecodeError as e:
            raise UserError(f"{cfg_path}: invalid JSON ({e})") from None
        if cfg.get("format") != FORMAT:
            raise UserError(f"{cfg_path}: not an audiogen model (format {cfg.get('format')!r})")
        spec = ModelSpec.from_dict(cfg["model"])
        if spec.text.path and not Path(spec.text.path).is_absolute():
            # An encoder stored inside the model directory is referenced relative to it.
            spec.text.path = str(root / spec.text.path)
        model = cls.build(spec)
        try:
            state = load_file(str(w_path))
        except (SafetensorError, OSError) as e:
            raise UserError(f"{w_path}: cannot read weights ({e})") from None
        missing, unexpected = model.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.startswith("text.encoder.")]
        if missing or unexpected:
            raise UserError(
                f"{w_path}: weights do not match the config "
                f"(missing {missing[:3]}, unexpected {unexpected[:3]})"
            )
        model.eval()
        if dtype is not None:
            model.lm.to(dtype)
        return model.to(device) if device is not None else model
