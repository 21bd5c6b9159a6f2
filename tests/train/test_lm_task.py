"""The LM training task on tiny synthetic token shards: learning, export, data determinism."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from audiogen.errors import UserError
from audiogen.musicgen import MusicGenModel
from audiogen.train import checkpoint as ckpt
from audiogen.train import lm_task
from audiogen.train.loop import train
from audiogen.train.recipes import parse_recipe

from .conftest import QUIET, REPO, cli_module, subprocess_env

LM_RECIPE = REPO / "recipes" / "lm_tiny.toml"
CARD, K, FRAME_RATE, SR = 32, 4, 50.0, 16000
# Debug-size model and a short window; everything else comes from recipes/lm_tiny.toml.
TINY = [
    "model.lm.dim=32",
    "model.lm.num_heads=4",
    "model.lm.num_layers=2",
    "model.lm.ffn_dim=64",
    f"model.lm.cardinality={CARD}",
    f"model.lm.num_codebooks={K}",
    f"model.sample_rate={SR}",
    f"model.frame_rate={FRAME_RATE}",
    "model.melody.chroma_rate=12.5",
    "data.segment_frames=32",
    "data.min_frames=4",
    "data.windows_per_item=4",
    "optim.lr=3e-3",
    "optim.warmup_steps=0",
    "optim.schedule=constant",
    "train.batch_size=8",
    "train.log_every=5",
]


def save_shards(root: Path, items: list[tuple[np.ndarray, np.ndarray, dict]]) -> Path:
    """One shard in the ``audiogen.data.tokens`` layout from ``(codes [n, K], pitch
    classes [n], index fields)`` per item."""
    root.mkdir(parents=True, exist_ok=True)
    meta = dict(
        sample_rate=SR, channels=1, frame_rate=FRAME_RATE, num_codebooks=K, cardinality=CARD
    )
    (root / "meta.json").write_text(json.dumps(meta))
    lines, offset = [], 0
    for codes, _, fields in items:
        n = len(codes)
        lines.append(json.dumps(dict(shard=0, offset=offset, length=n, **fields)))
        offset += n
    np.save(root / "shard_00000.npy", np.concatenate([c.astype(np.int16) for c, _, _ in items]))
    np.save(root / "shard_00000.pc.npy", np.concatenate([p.astype(np.uint8) for _, p, _ in items]))
    (root / "index.jsonl").write_text("\n".join(lines) + "\n")
    return root


def write_shards(root: Path, lengths: list[int]) -> Path:
    """Token shards with learnable codes.

    Item i counts in steps of ``i % 3 + 1`` per frame on codebook 0 and each codebook k is
    codebook 0 shifted by k, so the next code is predictable from context.
    """
    items = []
    for i, n in enumerate(lengths):
        t = np.arange(n)
        base = (t * (i % 3 + 1) + 5 * i) % CARD
        codes = np.stack([(base + k) % CARD for k in range(K)], axis=1)
        pcs = (t // 8 + i) % 13  # 12 = rest
        fields = dict(item=f"item{i}.wav", caption=f"piece number {i % 4}" if i % 5 else "")
        fields.update(split="train", has_melody=i % 2 == 0)
        items.append((codes, pcs, fields))
    return save_shards(root, items)


@pytest.fixture(scope="module")
def tokens(tmp_path_factory) -> Path:
    # Two items shorter than a window (20, 9 frames): padded; one below min_frames (3).
    lengths = [120, 80, 20, 200, 64, 9, 150, 3, 90, 40]
    return write_shards(tmp_path_factory.mktemp("lm") / "tok", lengths)


def recipe(tokens: Path, *overrides: str) -> lm_task.LMRecipe:
    sets = [*QUIET, *TINY, f"data.tokens={tokens}", *overrides]
    return parse_recipe(LM_RECIPE, lm_task.LMRecipe, sets)


def _losses(out: Path) -> list[float]:
    lines = (out / "train_log.jsonl").read_text().splitlines()
    return [json.loads(x)["loss"] for x in lines if '"loss"' in x]


def test_training_lowers_loss_and_checkpoint_loads_with_same_logits(tokens, tmp_path) -> None:
    out = tmp_path / "run"
    result = train(lm_task.TASK, recipe(tokens, "train.steps=40"), out_dir=out)
    losses = _losses(out)
    print(f"loss per 5 steps: {[round(x, 3) for x in losses]}")
    assert losses[-1] < 0.7 * losses[0]

    saved = load_file(result.checkpoint / ckpt.MODEL)
    assert saved and not [k for k in saved if k.startswith("text.encoder.")]  # frozen: not stored
    loaded = MusicGenModel.load(result.checkpoint)
    trained = result.model.eval()
    data = lm_task.build_dataset(recipe(tokens))
    batch = data.get_batch([0, 3, 6, 9])
    seq = loaded.spec.lm.pattern().build(batch.codes, special_token=CARD).seq[..., :-1]
    with torch.no_grad():
        want = trained(seq, text=batch.text, melody=batch.melody).logits
        got = loaded(seq, loaded.encode(batch.text, batch.melody)).logits
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    # Held-out loss: conditions kept, one fixed window per item.
    ev = lm_task.evaluate(trained, recipe(tokens), split="train", max_batches=2)
    assert ev == lm_task.evaluate(trained, recipe(tokens), split="train", max_batches=2)
    assert ev["ce"] < losses[0] and set(ev) >= {"ce", "ce_0", "ppl"}


def test_resume_is_exact(tokens, tmp_path) -> None:
    run = ["train.steps=6", "train.checkpoint_every=3"]
    train(lm_task.TASK, recipe(tokens, *run), out_dir=tmp_path / "straight")
    train(lm_task.TASK, recipe(tokens, "train.steps=3"), out_dir=tmp_path / "cut")
    train(lm_task.TASK, recipe(tokens, *run), out_dir=tmp_path / "cut", resume=True)
    a = load_file(ckpt.resolve_checkpoint(tmp_path / "straight") / ckpt.MODEL)
    b = load_file(ckpt.resolve_checkpoint(tmp_path / "cut") / ckpt.MODEL)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_cli_trains(tokens, tmp_path) -> None:
    cmd = [sys.executable, "-m", cli_module(), "train", "lm", "--recipe", str(LM_RECIPE)]
    cmd += ["--out", str(tmp_path / "run")]
    for o in [*QUIET, *TINY, f"data.tokens={tokens}", "train.steps=2"]:
        cmd += ["--set", o]
    done = subprocess.run(cmd, env=subprocess_env(), cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "step 2: loss" in done.stdout


def melody_shards(root: Path, lengths: list[int], seed: int = 0) -> Path:
    """Shards whose first codebook is the frame's pitch class (a random tune, one pitch
    class per frame) and whose other codebooks are noise: only the melody, read at the
    right frame, predicts codebook 0."""
    rng = np.random.default_rng(seed)
    items = []
    for i, n in enumerate(lengths):
        pc = rng.integers(0, 12, n)
        codes = rng.integers(0, CARD, (n, K))
        codes[:, 0] = pc
        fields = dict(item=f"t{i}.wav", caption="a tune", split="train", has_melody=True)
        items.append((codes, pc, fields))
    return save_shards(root, items)


def test_summed_melody_is_read_at_the_frame_it_predicts(tmp_path) -> None:
    """With ``fuse = "sum"`` and one chroma frame per codec frame, codebook 0 (= the pitch
    class of its frame) becomes predictable from the melody alone: an input misaligned by
    even one frame would leave it at chance (log 12 over the 12 classes used)."""
    tok = melody_shards(tmp_path / "tok", [96] * 12)
    over = [
        "model.melody.fuse=sum",
        f"model.melody.chroma_rate={FRAME_RATE}",
        "data.melody_dropout=0.0",
        "data.text_dropout=0.0",
        "train.steps=60",
    ]
    r = recipe(tok, *over)
    fresh = lm_task.build_model(r)
    assert fresh.melody.proj.weight.abs().sum() == 0  # starts as the melody-free LM
    model = train(lm_task.TASK, r, out_dir=tmp_path / "run").model
    with_melody = lm_task.evaluate(model, r, split="train")["ce_0"]
    without = lm_task.evaluate(model, r, split="train", melody_dropout=1.0)["ce_0"]
    print(f"codebook-0 CE with melody {with_melody:.3f}, null melody {without:.3f}")
    assert with_melody < 0.5 * np.log(12) and without > 0.8 * np.log(12)


def beat_shards(root: Path, lengths: list[int], seed: int = 0) -> Path:
    """Shards whose first codebook is 1 on the frames where a beat starts and 0 elsewhere
    (the caption's tempo on a grid from the item's first frame: every 40, 30 or 20 frames),
    the other codebooks noise."""
    rng = np.random.default_rng(seed)
    items = []
    for i, n in enumerate(lengths):
        bpm = (75, 100, 150)[i % 3]
        beats = np.floor(np.arange(n) / FRAME_RATE * bpm / 60 + 1e-9)
        codes = rng.integers(0, CARD, (n, K))
        codes[:, 0] = np.diff(beats, prepend=-1) > 0
        fields = dict(item=f"b{i}.wav", caption=f"a tune at {bpm} bpm", split="train")
        items.append((codes, np.full(n, 12), dict(fields, has_melody=False)))
    return save_shards(root, items)


def test_beat_clock_is_read_at_the_frame_it_predicts(tmp_path) -> None:
    """Windows start anywhere in their item, so in a 32-frame window the next beat (every
    20-40 frames) can only be placed from the clock, and only if its phase continues the
    item's grid and reaches the step that predicts the beat's frame."""
    tok = beat_shards(tmp_path / "tok", [400] * 12)
    over = [
        "model.tempo.enabled=true",
        "model.text.encoder=none",
        "model.lm.cross_attention=false",
        "model.melody.enabled=false",
        "data.tempo_dropout=0.0",
        "data.text_dropout=0.0",
        "data.windows_per_item=8",
        "train.steps=150",
    ]
    r = recipe(tok, *over)
    fresh = lm_task.build_model(r)
    assert fresh.tempo.proj.weight.abs().sum() == 0  # starts as the clock-free LM
    batch = lm_task.build_dataset(r).get_batch([0, 1, 2])
    assert batch.tempo.present.all() and batch.tempo.bpm.tolist() == [75.0, 100.0, 150.0]
    model = train(lm_task.TASK, r, out_dir=tmp_path / "run").model
    with_clock = lm_task.evaluate(model, r, split="train")["ce_0"]
    without = lm_task.evaluate(model, r, split="train", tempo_dropout=1.0)["ce_0"]
    print(f"codebook-0 CE with the clock {with_clock:.3f}, without {without:.3f}")
    assert with_clock < 0.3 * without


def test_init_fine_tunes_from_saved_weights(tokens, tmp_path) -> None:
    base = train(lm_task.TASK, recipe(tokens, "train.steps=3"), out_dir=tmp_path / "base")
    src = load_file(base.checkpoint / ckpt.MODEL)
    # Zero steps of fine-tuning are not allowed; build the model the loop would and compare.
    from audiogen.train.loop import init_from

    model = lm_task.build_model(recipe(tokens))
    init_from(model, base.checkpoint, skip=["melody.proj"])
    state = model.state_dict()
    for k, v in src.items():
        if k.startswith("melody.proj"):
            assert state[k].abs().sum() == 0, k  # skipped: the fresh (zero) init
        else:
            assert torch.equal(state[k], v), k
    tuned = train(
        lm_task.TASK,
        recipe(tokens, "train.steps=2", f"train.init={base.checkpoint}"),
        out_dir=tmp_path / "tuned",
    )
    assert tuned.checkpoint.name == "step_000002"
    with pytest.raises(UserError, match=r"train\.init: .*model\.safetensors does not fit.*"):
        init_from(lm_task.build_model(recipe(tokens, "model.lm.dim=48")), base.checkpoint)
    with pytest.raises(UserError, match=r"train\.init: .*nowhere.* not found"):
        init_from(model, tmp_path / "nowhere")


@pytest.mark.parametrize(
    "override, named",
    [("model.lm.cardinality=48", "cardinality = 32"), ("model.frame_rate=75", "frame_rate")],
)
def test_codec_mismatch_names_the_file(tokens, override: str, named: str) -> None:
    with pytest.raises(UserError, match=rf"meta\.json: tokens have {named}"):
        lm_task.build_model(recipe(tokens, override))


def test_codebook_count_mismatch_names_the_file(tokens) -> None:
    with pytest.raises(UserError, match=r"meta\.json.*num_codebooks = 4.*model\.lm\.num_codebooks"):
        lm_task.build_dataset(recipe(tokens, "model.lm.num_codebooks=2"))


def test_cross_attention_must_match_the_fusers(tokens) -> None:
    with pytest.raises(UserError, match="cross_attention"):
        recipe(tokens, "model.lm.cross_attention=false")


def test_cfg_dropout_rates_are_independent_and_seeded(tokens) -> None:
    over = ["data.text_dropout=0.3", "data.melody_dropout=0.5", "data.windows_per_item=300"]
    data = lm_task.build_dataset(recipe(tokens, *over))
    n = len(data)
    ex = [data.example(i) for i in range(n)]
    drop_t = np.array([not e.keep_text for e in ex])
    drop_m = np.array([not e.keep_melody for e in ex])
    assert n == 9 * 300
    assert abs(drop_t.mean() - 0.3) < 0.03 and abs(drop_m.mean() - 0.5) < 0.03
    assert abs((drop_t & drop_m).mean() - 0.15) < 0.03  # independent draws
    # The batch carries the decisions: dropped or empty captions and melodies are null.
    idx = list(range(40))
    batch = data.get_batch(idx)
    for i, e in zip(idx, ex[:40], strict=True):
        assert bool(batch.text.present[i]) == (e.keep_text and bool(e.entry.caption))
        assert bool(batch.melody.present[i]) == (e.keep_melody and e.entry.has_melody)
    again = lm_task.build_dataset(recipe(tokens, *over))
    assert [again.example(i) for i in range(200)] == ex[:200]
    other = lm_task.build_dataset(recipe(tokens, *over, "data.seed=7"))
    assert [other.example(i) for i in range(200)] != ex[:200]
    never = lm_task.build_dataset(recipe(tokens, "data.text_dropout=0", "data.melody_dropout=0"))
    assert all(e.keep_text and e.keep_melody for e in map(never.example, range(100)))


def test_windows_depend_on_seed_and_index_only(tokens) -> None:
    data = lm_task.build_dataset(recipe(tokens, "data.windows_per_item=20"))
    f = data.cfg.segment_frames
    assert all(e.length >= 4 for e in data.entries) and len(data.entries) == 9
    # Reading in any order or batch grouping (ranks, resume) gives the same windows.
    whole = data.get_batch(list(range(24)))
    parts = [data.get_batch(list(range(24))[::-1][r::3]) for r in range(3)]
    for r, part in enumerate(parts):
        assert torch.equal(part.codes, whole.codes.flip(0)[r::3])
    starts = {data.example(i).start for i in range(0, len(data), 9)}  # all windows of item 0
    assert len(starts) > 5 and max(starts) <= 120 - f
    # Items shorter than a window: special-token padding, masked out of the loss.
    short = next(i for i, e in enumerate(data.entries) if e.length < f)
    b = data.get_batch([short])
    n = data.entries[short].length
    assert b.valid[0].sum() == n and bool((b.codes[0, :, n:] == CARD).all())
    assert b.melody.chroma.shape[1] == f // data.chroma_step


def test_padding_is_masked_out_of_the_loss(tokens) -> None:
    r = recipe(tokens)
    model = lm_task.build_model(r).eval()
    data = lm_task.build_dataset(r)
    short = next(i for i, e in enumerate(data.entries) if e.length < data.cfg.segment_frames)
    padded = data.get_batch([short])
    n = data.entries[short].length
    out = lm_task.lm_step(model, padded, precision=None)
    assert out.items == K * n  # every code of every real frame is a target, nothing else
    # The padded window scores exactly like the item alone: padding is special tokens,
    # which is what the delay pattern puts after an item's last frame anyway.
    alone = dataclasses.replace(padded, codes=padded.codes[..., :n], valid=padded.valid[:, :n])
    ref = lm_task.lm_step(model, alone, precision=None)
    assert ref.items == out.items
    torch.testing.assert_close(out.loss, ref.loss, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["lm_tiny", "lm_small", "lm_medium"])
def test_recipes_parse(name: str) -> None:
    r = parse_recipe(REPO / "recipes" / f"{name}.toml", lm_task.LMRecipe)
    assert r.model.lm.dim % r.model.lm.num_heads == 0


@pytest.mark.slow
@pytest.mark.parametrize("parallel", ["ddp", "fsdp"])
def test_two_processes_equal_one(tmp_path, parallel) -> None:
    """DDP, and FSDP2 with each decoder layer its own unit (cross-attention K/V projected
    inside the layer), train the LM like one process at the same global batch. Every item
    fills its windows: each rank's loss is a mean over its own valid tokens, so with padded
    items the two ranks' means would be weighted equally rather than by their token counts
    (as in audiocraft); equal counts make the runs comparable exactly."""
    tokens = write_shards(tmp_path / "tok", [120, 80, 200, 64, 150, 90, 40, 100])
    run = ["train.steps=4", "train.checkpoint_every=1000", f"train.parallel={parallel}"]
    train(lm_task.TASK, recipe(tokens, *run), out_dir=tmp_path / "one")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    cmd += ["-m", cli_module(), "train", "lm", "--recipe", str(LM_RECIPE)]
    cmd += ["--out", str(tmp_path / "two")]
    for o in [*QUIET, *TINY, f"data.tokens={tokens}", *run]:
        cmd += ["--set", o]
    done = subprocess.run(cmd, env=subprocess_env(), cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    one = load_file(ckpt.resolve_checkpoint(tmp_path / "one") / ckpt.MODEL)
    two = load_file(ckpt.resolve_checkpoint(tmp_path / "two") / ckpt.MODEL)
    assert one.keys() == two.keys()
    for k in one:
        torch.testing.assert_close(two[k], one[k], rtol=1e-4, atol=1e-5)
