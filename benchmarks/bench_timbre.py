"""Learned timbre vs presets on a FluidSynth-rendered violin (GM program 40).

1. Write two monophonic violin melodies with pretty_midi (different seeds): a training one
   and a held-out one; render both with the FluidSynth CLI + FluidR3 GM SoundFont.
2. Fit a timbre on the training recording (``audiogen synth fit``'s code path).
3. Render the held-out MIDI with the fitted timbre and with every preset; score each against
   FluidSynth's held-out audio with the multi-scale spectral loss (after matching RMS, so
   the score is about timbre, not level).

    OMP_NUM_THREADS=1 python benchmarks/bench_timbre.py
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import pretty_midi
import torch

from audiogen import audio as audio_io
from audiogen.midi import load_notes
from audiogen.synth import INSTRUMENTS, render_notes
from audiogen.synth.features import extract_controls
from audiogen.synth.fit import fit_timbre_file
from audiogen.synth.fluidsynth import render_midi_fluidsynth
from audiogen.synth.losses import multiscale_spectral_loss
from audiogen.synth.timbre import TimbreConfig

SR = 32000


def violin_melody(path: Path, seconds: float, seed: int) -> Path:
    """A monophonic violin line (G3..A5, mixed lengths and dynamics) on GM program 40."""
    rng = random.Random(seed)
    scale = [0, 2, 4, 5, 7, 9, 11]
    pm = pretty_midi.PrettyMIDI(initial_tempo=90)
    inst = pretty_midi.Instrument(program=40, name="violin")
    t, degree = 0.2, 7
    while t < seconds:
        length = rng.choice([0.35, 0.5, 0.7, 1.0, 1.4])
        degree = max(0, min(15, degree + rng.choice([-3, -2, -1, 1, 2, 4])))
        pitch = 55 + 12 * (degree // 7) + scale[degree % 7]
        inst.notes.append(pretty_midi.Note(rng.randint(60, 115), pitch, t, t + 0.92 * length))
        t += length
    pm.instruments.append(inst)
    pm.write(str(path))
    return path


def score(candidate: torch.Tensor, reference: torch.Tensor) -> float:
    """Multi-scale spectral loss of ``candidate`` [1, T'] vs ``reference`` [1, T], RMS-matched."""
    n = reference.shape[-1]
    cand = torch.nn.functional.pad(candidate, (0, max(0, n - candidate.shape[-1])))[..., :n]
    cand = cand * (reference.square().mean().sqrt() / cand.square().mean().sqrt().clamp(1e-8))
    return float(multiscale_spectral_loss(cand, reference))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results/bench_timbre.json")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--train-seconds", type=float, default=40.0)
    parser.add_argument("--test-seconds", type=float, default=15.0)
    parser.add_argument("--save-timbre", help="also keep the fitted timbre here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        train_mid = violin_melody(work / "train.mid", args.train_seconds, seed=1)
        test_mid = violin_melody(work / "test.mid", args.test_seconds, seed=2)
        render_midi_fluidsynth(train_mid, work / "train.wav", sample_rate=SR)
        render_midi_fluidsynth(test_mid, work / "test.wav", sample_rate=SR)
        timbre_path = Path(args.save_timbre) if args.save_timbre else work / "violin.safetensors"
        start = time.perf_counter()
        result = fit_timbre_file(
            work / "train.wav",
            timbre_path,
            config=TimbreConfig(sample_rate=SR),
            steps=args.steps,
            batch_size=args.batch_size,
        )
        fit_seconds = time.perf_counter() - start
        reference, _ = audio_io.load(work / "test.wav", sample_rate=SR, channels=1)
        notes = load_notes(test_mid)
        train_ref, _ = audio_io.load(work / "train.wav", sample_rate=SR, channels=1)
        train_notes = load_notes(train_mid)

    losses = {"fitted_timbre": score(render_notes(notes, timbre=result.model), reference)}
    # Upper bound for the decoder alone: driven by the held-out audio's own pyin/loudness.
    controls = extract_controls(reference[0], SR, result.model.config.hop)
    with torch.inference_mode():
        resynthesis = result.model(controls.f0_hz[None], controls.loudness_db[None])
    resynthesis_loss = score(resynthesis, reference)
    for name in INSTRUMENTS:
        losses[name] = score(render_notes(notes, instrument=name, sample_rate=SR), reference)
    presets = {k: v for k, v in losses.items() if k != "fitted_timbre"}
    closest = min(presets, key=presets.get)
    fitted = losses["fitted_timbre"]
    train_loss = score(render_notes(train_notes, timbre=result.model), train_ref)

    print(
        f"fit: {args.steps} steps in {fit_seconds:.0f} s, final training-batch loss "
        f"{result.losses[-1]:.3f}, pitched frames {result.voiced_fraction:.0%}"
    )
    print(f"{'renderer':16s} {'held-out spectral loss':>24s}")
    for name, value in sorted(losses.items(), key=lambda kv: kv[1]):
        print(f"{name:16s} {value:24.3f}")
    reduction = 1 - fitted / presets[closest]
    print(
        f"fitted timbre {fitted:.3f} vs closest preset '{closest}' {presets[closest]:.3f}: "
        f"{reduction:.0%} lower (training notes, fitted: {train_loss:.3f})"
    )
    report = {
        "benchmark": "bench_timbre",
        "reference": "FluidSynth 2.x, FluidR3_GM.sf2, GM program 40 (violin), 32 kHz",
        "train_seconds": args.train_seconds,
        "test_seconds": args.test_seconds,
        "steps": args.steps,
        "batch_size": args.batch_size,
        "fit_seconds": fit_seconds,
        "held_out_loss": losses,
        "train_notes_loss_fitted": train_loss,
        "held_out_resynthesis_loss_fitted": resynthesis_loss,
        "fitted_envelope": dataclasses.asdict(result.model.config.envelope),
        "fitted_vibrato": dataclasses.asdict(result.model.config.vibrato),
        "closest_preset": closest,
        "relative_reduction_vs_closest_preset": reduction,
        "loss": "multi-scale spectral loss (L1 lin + log |STFT|, FFT 2048..64), RMS-matched",
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
