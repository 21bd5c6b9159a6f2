"""Build an audio corpus offline from symbolic music: render, caption, split, resume.

Layout under ``out``: ``audio/<piece>.flac``, ``midi/<piece>.mid`` (whose note times match
the audio exactly), ``items/<piece>.json`` (one finished item each, written last, so a
re-run skips exactly the finished ones), ``manifest.jsonl`` and ``index_report.json``.
Every random choice for a piece comes from an RNG seeded by (seed, piece id, version), so
results do not depend on order, ``limit`` or resumption; splits hash the piece id, so all
versions of a piece share one split.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from audiogen import audio
from audiogen.data.arrange import arrange, write_midi
from audiogen.data.captions import caption, instrument_names
from audiogen.data.manifest import ManifestItem, read_manifest, write_manifest
from audiogen.data.report import IndexReport
from audiogen.data.sources import Piece, list_pieces, load_music, slug
from audiogen.data.splits import hash_split, seed_for, unit_hash
from audiogen.data.styles import key_name
from audiogen.errors import UserError

RENDERERS = ("fluidsynth", "ddsp")
DEFAULT_SOUNDFONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
# Keep this much after the last note off: releases and reverb tails.
TAIL_SECONDS = 1.5


@dataclass
class CorpusConfig:
    """Options of a corpus build (see :func:`build_corpus`)."""

    sources: list[str]
    out: Path
    renderer: str = "fluidsynth"
    limit: int | None = None
    seed: int = 0
    sample_rate: int = 32000
    channels: int = 1
    versions: int = 1
    max_seconds: float = 120.0
    min_seconds: float = 2.0
    valid: float = 0.05
    test: float = 0.05
    soundfont: str = DEFAULT_SOUNDFONT


@dataclass
class BuildResult:
    """What a build did: the report (items + skipped), counts and wall time in seconds."""

    report: IndexReport
    rendered: int
    resumed: int
    seconds: float


def select_pieces(source: str, *, limit: int | None, seed: int) -> list[Piece]:
    """The pieces of ``source``; with ``limit``, a seeded sample of that many (per source)."""
    pieces = list_pieces(source)
    if limit is not None and limit < len(pieces):
        # Rank by a hash, so the sample is spread over the whole collection and stable.
        pieces = sorted(pieces, key=lambda p: unit_hash("pick", seed, p.piece_id))[:limit]
        pieces.sort(key=lambda p: p.piece_id)
    return pieces


def build_corpus(cfg: CorpusConfig, *, progress: bool = True) -> BuildResult:
    """Render every selected piece (skipping finished ones) and write the manifest.

    A piece that fails to parse or render, or renders silent or too short, is skipped and
    listed in ``index_report.json``; it never stops the build.
    """
    from tqdm import tqdm

    if cfg.renderer not in RENDERERS:
        raise UserError(f"--renderer must be one of {', '.join(RENDERERS)}, got {cfg.renderer!r}")
    if cfg.renderer == "fluidsynth":
        _check_fluidsynth(cfg.soundfont)
    t0 = time.perf_counter()
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    jobs = [
        (piece, v)
        for source in cfg.sources
        for piece in select_pieces(source, limit=cfg.limit, seed=cfg.seed)
        for v in range(cfg.versions)
    ]
    report = IndexReport(source="corpus:" + ",".join(cfg.sources))
    rendered = resumed = 0
    bar = tqdm(jobs, desc=f"corpus ({cfg.renderer})", unit="piece", disable=not progress)
    for piece, version in bar:
        name = slug(piece.piece_id) + (f".v{version}" if cfg.versions > 1 else "")
        record = out / "items" / f"{name}.json"
        if record.is_file():
            try:
                report.items.append(read_manifest(record)[0])
                resumed += 1
                continue
            except UserError:
                pass  # a damaged record: render again
        try:
            item = render_piece(piece, version=version, name=name, cfg=cfg)
        except Exception as e:  # one bad piece must never stop a long build
            report.skip(piece.piece_id, _reason(e))
            continue
        write_manifest(record, [item])
        report.items.append(read_manifest(record)[0])
        rendered += 1
    write_manifest(out / "manifest.jsonl", report.items)
    report.write(out / "index_report.json")
    return BuildResult(report, rendered, resumed, time.perf_counter() - t0)


def render_piece(piece: Piece, *, version: int, name: str, cfg: CorpusConfig) -> ManifestItem:
    """Arrange, write MIDI, render and save one version of ``piece``; return its item."""
    rng = np.random.default_rng(seed_for(cfg.seed, piece.piece_id, version))
    music = load_music(piece)
    arr = arrange(music, rng=rng, renderer=cfg.renderer)
    midi_path = cfg.out / "midi" / f"{name}.mid"
    write_midi(arr, midi_path, meter=music.meter, max_seconds=cfg.max_seconds)
    if arr.notes == 0:
        raise ValueError("no notes to render")
    if arr.seconds < cfg.min_seconds:
        raise ValueError(f"too short: {arr.seconds:.2f} s < {cfg.min_seconds:g} s")
    if cfg.renderer == "fluidsynth":
        wav = render_fluidsynth(midi_path, sample_rate=cfg.sample_rate, soundfont=cfg.soundfont)
    else:
        wav = render_ddsp(midi_path, arr=arr, sample_rate=cfg.sample_rate, seed=seed_for(name))
    wav = audio.convert_channels(wav, cfg.channels)
    wav = wav[:, : int((arr.seconds + TAIL_SECONDS) * cfg.sample_rate)]
    peak = float(wav.abs().max()) if wav.numel() else 0.0
    if not np.isfinite(peak) or peak < 1e-3:
        raise ValueError(f"rendered audio is silent (peak {peak:.2g})")
    wav = audio.normalize_peak(wav, peak_db=-1.0)
    audio_path = cfg.out / "audio" / f"{name}.flac"
    audio_path.parent.mkdir(parents=True, exist_ok=True)
    audio.save(audio_path, wav, cfg.sample_rate)
    return ManifestItem(
        path=str(audio_path),
        duration=round(wav.shape[-1] / cfg.sample_rate, 6),
        sample_rate=cfg.sample_rate,
        channels=cfg.channels,
        description=caption(music, arr, rng),
        split=hash_split(piece.piece_id, seed=cfg.seed, valid=cfg.valid, test=cfg.test),
        genre=music.genre,
        instruments=instrument_names(arr),
        bpm=float(arr.bpm),
        key=key_name(arr.tonic_pc, arr.mode),
        midi=str(midi_path),
        source=piece.source,
        title=music.title or None,
        piece=piece.piece_id,
    )


def render_fluidsynth(midi_path: Path, *, sample_rate: int, soundfont: str) -> torch.Tensor:
    """Render with FluidSynth and the GM SoundFont; returns ``[C, T]``."""
    with tempfile.TemporaryDirectory() as tmp:
        wav_path = Path(tmp) / "render.wav"
        try:
            from audiogen.synth.fluidsynth import render_midi_fluidsynth
        except ImportError:
            render_midi_fluidsynth = None
        if render_midi_fluidsynth is not None:
            render_midi_fluidsynth(
                midi_path, wav_path, sample_rate=sample_rate, soundfont=soundfont
            )
        else:
            # Until audiogen.synth.fluidsynth lands: the same FluidSynth CLI call.
            cmd = ["fluidsynth", "-ni", "-q", "-g", "0.5", "-r", str(sample_rate)]
            cmd += ["-F", str(wav_path), soundfont, str(midi_path)]
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0 or not wav_path.is_file():
                raise RuntimeError(f"fluidsynth failed: {r.stderr.strip()[-300:]}")
        wav, sr = audio.load(wav_path, sample_rate=sample_rate)
    return wav


def render_ddsp(midi_path: Path, *, arr, sample_rate: int, seed: int) -> torch.Tensor:
    """Render each part with its DDSP preset and mix; returns ``[1, T]``."""
    from audiogen import midi
    from audiogen.synth import render_notes

    tracks = midi.list_tracks(midi_path)
    presets = {p.instrument.name: p.instrument.preset for p in arr.parts}
    mix = None
    for t in tracks:
        notes = midi.load_notes(midi_path, track=t.index)
        wav = render_notes(notes, instrument=presets[t.name], sample_rate=sample_rate, seed=seed)
        if mix is None:
            mix = wav
        else:
            n = max(mix.shape[-1], wav.shape[-1])
            mix = torch.nn.functional.pad(mix, (0, n - mix.shape[-1]))
            mix = mix + torch.nn.functional.pad(wav, (0, n - wav.shape[-1]))
    if mix is None:
        raise ValueError("no tracks to render")
    return mix


def _check_fluidsynth(soundfont: str) -> None:
    if shutil.which("fluidsynth") is None:
        raise UserError(
            "--renderer fluidsynth needs the fluidsynth program (apt install fluidsynth)"
        )
    if not os.path.isfile(soundfont):
        raise UserError(
            f"SoundFont not found: {soundfont} "
            "(apt install fluid-soundfont-gm, or pass --soundfont)"
        )


def _reason(e: Exception) -> str:
    msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return f"{type(e).__name__}: {msg}" if msg else type(e).__name__


def summary_json(result: BuildResult) -> str:
    """The build's report plus timing, as JSON text."""
    d = result.report.to_dict() | {"rendered": result.rendered, "resumed": result.resumed}
    return json.dumps(d | {"seconds": round(result.seconds, 1)}, indent=2)
