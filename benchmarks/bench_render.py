"""Render speed: audiogen's DDSP synth against the FluidSynth CLI on the same MIDI files.

Two inputs: a 60 s monophonic melody (GM flute) generated here with pretty_midi, and Bach's
chorale BWV 66.6 from the music21 corpus (four voices). Each is rendered at 32 kHz by

- audiogen in-process (``render_midi``; the library call, after one warm-up render),
- audiogen end to end (``python -m audiogen render``: interpreter and torch start-up included),
- the FluidSynth CLI (``fluidsynth -ni -F``; SoundFont loading included, as every call pays it).

Wall and CPU seconds are the best of ``--repeats`` runs; real-time factor = audio seconds /
wall seconds; ratio = FluidSynth wall / audiogen wall (> 1: audiogen is faster).

    OMP_NUM_THREADS=1 taskset -c 0 python benchmarks/bench_render.py
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pretty_midi
import torch


def make_melody(path: Path, seconds: float = 60.0, seed: int = 0) -> Path:
    """A deterministic stepwise melody in C major with mixed note lengths (GM 73, flute)."""
    rng = random.Random(seed)
    scale = [0, 2, 4, 5, 7, 9, 11]
    pm = pretty_midi.PrettyMIDI(initial_tempo=100)
    inst = pretty_midi.Instrument(program=73, name="melody")
    t, degree = 0.0, 7
    while t < seconds:
        length = rng.choice([0.3, 0.3, 0.6, 0.6, 0.9, 1.2])
        degree = max(0, min(14, degree + rng.choice([-2, -1, -1, 1, 1, 2, 3])))
        pitch = 60 + 12 * (degree // 7) + scale[degree % 7]
        velocity = rng.randint(70, 110)
        inst.notes.append(pretty_midi.Note(velocity, pitch, t, t + length * 0.95))
        t += length
    pm.instruments.append(inst)
    pm.write(str(path))
    return path


def make_chorale(path: Path) -> Path:
    """BWV 66.6 from the music21 corpus, written as MIDI."""
    import music21

    music21.corpus.parse("bach/bwv66.6").write("midi", fp=str(path))
    return path


def _best(fn, repeats: int) -> tuple[float, float]:
    """Best (wall, cpu) seconds of ``fn()`` over ``repeats`` runs; cpu includes children."""
    best_wall, best_cpu = float("inf"), float("inf")
    for _ in range(repeats):
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu0 = time.process_time() + kids.ru_utime + kids.ru_stime
        wall0 = time.perf_counter()
        fn()
        wall = time.perf_counter() - wall0
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = time.process_time() + kids.ru_utime + kids.ru_stime - cpu0
        best_wall, best_cpu = min(best_wall, wall), min(best_cpu, cpu)
    return best_wall, best_cpu


def bench_file(midi: Path, instrument: str, sample_rate: int, repeats: int, workdir: Path) -> dict:
    from audiogen.synth import render_midi
    from audiogen.synth.fluidsynth import render_midi_fluidsynth

    wav = render_midi(midi, instrument=instrument, sample_rate=sample_rate)  # warm-up
    seconds = wav.shape[-1] / sample_rate
    lib_wall, lib_cpu = _best(
        lambda: render_midi(midi, instrument=instrument, sample_rate=sample_rate), repeats
    )
    out = workdir / f"{midi.stem}.audiogen.wav"
    cli = [sys.executable, "-m", "audiogen", "render", str(midi), "-o", str(out)]
    cli += ["--instrument", instrument, "--sample-rate", str(sample_rate)]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    try:
        cli_wall, cli_cpu = _best(
            lambda: subprocess.run(cli, check=True, capture_output=True, text=True, env=env),
            repeats,
        )
    except subprocess.CalledProcessError as e:  # report the library numbers regardless
        last = (e.stderr or "").strip().splitlines()[-1:] or ["no output"]
        print(f"audiogen CLI failed: {last[0]}", file=sys.stderr)
        cli_wall = cli_cpu = float("nan")
    fs_out = workdir / f"{midi.stem}.fluidsynth.wav"
    fs_wall, fs_cpu = _best(
        lambda: render_midi_fluidsynth(midi, fs_out, sample_rate=sample_rate), repeats
    )
    fs_seconds = pretty_midi.PrettyMIDI(str(midi)).get_end_time()
    return {
        "file": midi.name,
        "instrument": instrument,
        "sample_rate": sample_rate,
        "audio_seconds": round(seconds, 3),
        "midi_seconds": round(fs_seconds, 3),
        "audiogen_library": {"wall_s": lib_wall, "cpu_s": lib_cpu, "rtf": seconds / lib_wall},
        "audiogen_cli": {"wall_s": cli_wall, "cpu_s": cli_cpu, "rtf": seconds / cli_wall},
        "fluidsynth_cli": {"wall_s": fs_wall, "cpu_s": fs_cpu, "rtf": seconds / fs_wall},
        "ratio_library_vs_fluidsynth": fs_wall / lib_wall,
        "ratio_cli_vs_fluidsynth": fs_wall / cli_wall,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results/bench_render.json")
    parser.add_argument("--sample-rate", type=int, default=32000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        inputs = [
            (make_melody(work / "melody.mid"), "flute"),
            (make_chorale(work / "bwv66.6.mid"), "auto"),
        ]
        for midi, instrument in inputs:
            results.append(bench_file(midi, instrument, args.sample_rate, args.repeats, work))

    header = f"{'file':14s} {'audio s':>8s} {'renderer':18s} {'wall s':>8s} {'cpu s':>7s}"
    print(header + f" {'x real time':>12s} {'FluidSynth/this':>16s}")
    for r in results:
        for key, label in [
            ("audiogen_library", "audiogen library"),
            ("audiogen_cli", "audiogen CLI"),
            ("fluidsynth_cli", "FluidSynth CLI"),
        ]:
            m = r[key]
            ratio = r["fluidsynth_cli"]["wall_s"] / m["wall_s"]
            print(
                f"{r['file']:14s} {r['audio_seconds']:8.1f} {label:18s} {m['wall_s']:8.3f}"
                f" {m['cpu_s']:7.3f} {m['rtf']:12.1f} {ratio:16.2f}"
            )
    report = {
        "benchmark": "bench_render",
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_affinity": sorted(os.sched_getaffinity(0)),
            "torch_threads": torch.get_num_threads(),
            "load_average": os.getloadavg(),
        },
        "torch": torch.__version__,
        "repeats": args.repeats,
        "results": results,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
