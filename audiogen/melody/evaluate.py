"""``audiogen eval melody``: bits per note and sample statistics of melody models on a
folder of MIDI tunes, written as JSON, Markdown and PNG piano rolls."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from audiogen.errors import UserError
from audiogen.fileio import atomic_write_text
from audiogen.melody.data import Melody, load_midi_dir
from audiogen.melody.metrics import bits_per_note, in_key_ratio, sample_stats
from audiogen.melody.model import load_model
from audiogen.melody.sample import Constraints, sample_tokens
from audiogen.melody.tokens import get_tokenizer

# Report keys and the bundled model each one defaults to.
DEFAULT_MODELS = {"markov": "markov", "lstm": "lstm", "transformer": "tiny"}


def parse_model_args(specs: list[str]) -> dict[str, str]:
    """``--model`` values: ``NAME=DIR`` (replaces or adds NAME) or ``DIR`` (named after it)."""
    models = dict(DEFAULT_MODELS)
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep:
            name, path = Path(spec).name or spec, spec
        if not name or not path:
            raise UserError(f"--model {spec!r}: expected NAME=DIR or DIR")
        models[name] = path
    return models


def sample_melodies(
    model, tunes: list[Melody], count: int, *, max_bars: int, seed: int, batch_size: int = 16
) -> list[Melody]:
    """``count`` unconstrained samples (grammar only: no key or range masks), each
    conditioned on a tune's key, meter and style and as many bars (at most ``max_bars``)."""
    tok = get_tokenizer()
    out: list[Melody] = []
    for start in range(0, count, batch_size):
        refs = [tunes[i % len(tunes)] for i in range(start, min(count, start + batch_size))]
        prefixes = [tok.conditions(t.key, t.meter, t.style) for t in refs]
        cons = [Constraints(meter=t.meter, bars=min(t.num_bars, max_bars)) for t in refs]
        seqs = sample_tokens(model, prefixes, cons, seed=seed + start)
        out += [tok.decode(s, name=f"sample {start + i}") for i, s in enumerate(seqs)]
    return out


def evaluate_melody(
    data: str | os.PathLike,
    models: dict[str, str],
    out: str | os.PathLike,
    *,
    samples: int = 64,
    max_bars: int = 16,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Evaluate each model on the tunes under ``data``; write ``out`` (JSON), ``out``.md and
    one piano-roll PNG per model; returns the report."""
    out = Path(out)
    if out.suffix.lower() != ".json":
        raise UserError(f"{out}: --out must name a .json report")
    if out.is_dir() or not out.parent.is_dir():
        raise UserError(f"{out}: cannot write the report there")
    tunes, failed = load_midi_dir(data)
    report: dict = {
        "data": {
            "dir": str(data),
            "tunes": len(tunes),
            "notes": sum(len(t.notes) for t in tunes),
            "skipped": failed,
        },
        "reference": {"in_key_ratio": in_key_ratio(tunes)},
        "settings": {"samples": samples, "max_bars": max_bars, "seed": seed},
        "models": {},
    }
    for name, spec in models.items():
        try:
            loaded = load_model(spec)
        except UserError as e:
            report["models"][name] = {"model": spec, "error": str(e)}
            if progress:
                print(f"{name}: skipped ({e})", flush=True)
            continue
        t0 = time.perf_counter()
        bpn = bits_per_note(loaded.model, tunes)
        t1 = time.perf_counter()
        mels = sample_melodies(loaded.model, tunes, samples, max_bars=max_bars, seed=seed)
        t2 = time.perf_counter()
        entry = {"model": spec, "kind": loaded.config.kind, "bits_per_note": bpn}
        entry.update(sample_stats(tunes, mels))
        entry["score_seconds"], entry["sample_seconds"] = t1 - t0, t2 - t1
        png = out.with_name(f"{out.stem}_{name}.png")
        _piano_roll(mels, png, f"{name}: {mels[0].key.name}, {mels[0].meter[0]}/{mels[0].meter[1]}")
        entry["piano_roll"] = png.name
        report["models"][name] = entry
        if progress:
            print(f"{name}: {bpn:.3f} bits/note", flush=True)
    if not any("bits_per_note" in m for m in report["models"].values()):
        errors = "; ".join(m["error"] for m in report["models"].values())
        raise UserError(f"no melody model could be loaded: {errors}")
    atomic_write_text(out, json.dumps(report, indent=2))
    atomic_write_text(out.with_suffix(".md"), markdown(report))
    return report


def _piano_roll(mels: list[Melody], path: Path, title: str) -> None:
    from audiogen.midi import Note, save_piano_roll

    m = next((m for m in mels if m.notes), None)
    if m is None:
        return
    spq = 60.0 / m.tempo
    notes = [Note(n.pitch, n.onset * spq, (n.onset + n.duration) * spq) for n in m.notes]
    save_piano_roll(notes, path, title=title)


def markdown(report: dict) -> str:
    d = report["data"]
    lines = [
        "# Melody model evaluation",
        "",
        f"{d['tunes']} tunes ({d['notes']} notes) from `{d['dir']}`; held-out in-key ratio "
        f"{report['reference']['in_key_ratio']:.3f}. {report['settings']['samples']} samples per "
        "model, each conditioned on a tune's key, meter and style (no key or range masks).",
        "",
        "| model | bits/note | in-key ratio | pc KL | interval KL | duration KL |",
        "|---|---|---|---|---|---|",
    ]
    for name, m in report["models"].items():
        if "error" in m:
            lines.append(f"| {name} | not evaluated: {m['error']} | | | | |")
            continue
        lines.append(
            f"| {name} | {m['bits_per_note']:.3f} | {m['in_key_ratio']:.3f} | {m['pc_kl']:.3f} "
            f"| {m['interval_kl']:.3f} | {m['duration_kl']:.3f} |"
        )
    lines += ["", "KLs are KL(tunes || samples) in bits. Piano rolls (first sample):", ""]
    lines += [
        f"![{n}]({m['piano_roll']})" for n, m in report["models"].items() if "piano_roll" in m
    ]
    return "\n".join(lines) + "\n"
