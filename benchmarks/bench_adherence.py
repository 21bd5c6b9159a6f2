"""Does a generator do what the prompt says? Instrument family, tempo, melody, in-domain FAD.

Judges are fitted on the corpus' held-out split (valid + test pieces, never seen in
training) and their own accuracy on that real audio is reported beside the generated
audio's, so a number can be read against what the judge can tell at all:

- instrument family: logistic regression on timbre statistics (MFCC, spectral shape and
  contrast, loudness envelope, average mel shape) of 10 s windows. The held-out pieces'
  own renderings give 1-3 examples per family, too few to fit nine classes, so the judge
  also sees every held-out piece's MIDI rendered once per family (FluidSynth, the corpus'
  SoundFont; one member instrument per family, rotating, transposed by octaves into its
  range; cached in ``--judge-renders``). Its accuracy on real held-out audio comes from
  leave-one-piece-out fits (every rendering of the piece left out). A second judge is
  fitted on the same windows after a round trip through the codec (how the codec renders
  each family: it separates what the LM follows from what the codec keeps);
- tempo: librosa's beat tracker, its estimate folded by octaves into the held-out
  captions' tempo range (beat trackers often lock onto twice or half the beat); a clip
  passes when within 10% of the caption's bpm (also reported unfolded, and allowing a
  factor of 2); and the beat lock (``audiogen.eval.metrics.beat_lock``): the onset-weighted
  cosine of the beat phase on the caption tempo's grid from the clip's start (1: onsets on
  the beats, ~0: unrelated to the grid; real clips start at their piece's start, generated
  ones where a beat clock starts), and its magnitude at any phase;
- melody: chroma cosine between the piece's MIDI and audio generated with that MIDI as the
  melody condition, against the same prompts generated without it (the baseline);
  family and tempo are judged on the text-only clips, and again (``with_melody``) on the
  clips that also follow the melody;
- FAD (MFCC embedding, no weights needed) of generated vs held-out audio, next to the FAD
  between two halves of the held-out audio.

The same judges also score the real test clips and those clips after a round trip through
the generator's codec (encode + decode): what the judges can tell at all, and how much of it
the tokens keep, which bounds what an LM over those tokens can show. ``--reference-opus``
adds the same clips through libopus at the given bitrates (ffmpeg): how much coding a judge
survives, for a conventional codec at several rates; ``--reference-noise`` adds white noise
at the given signal-to-noise ratios (dB, seeded), the simplest degradation there is.

    python benchmarks/bench_adherence.py --manifest corpus/manifest.jsonl [--model tiny]
    python benchmarks/bench_adherence.py --manifest ... --codec-only   # ceilings, no LM
    python benchmarks/bench_adherence.py --manifest ... --codec-only --reference-opus 6 12 24
    python benchmarks/bench_adherence.py --manifest ... --split valid --temperature 0.8
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from audiogen import audio

FAMILIES = {
    "woodwind": {"flute", "oboe", "clarinet", "bassoon", "tin whistle", "pan flute", "recorder"},
    "saxophone": {"soprano saxophone", "alto saxophone", "tenor saxophone", "baritone saxophone"},
    "brass": {"trumpet", "french horn", "trombone", "tuba"},
    "bowed strings": {"violin", "viola", "cello", "fiddle", "string orchestra"},
    "keyboard": {"piano", "organ"},
    "free reed": {"accordion", "harmonica"},
    "plucked": {"banjo", "harp", "nylon-string guitar"},
    "mallets": {"vibraphone", "marimba"},
    "voice": {"choir"},
}


def family(instruments: list[str]) -> str | None:
    """The one family all instruments belong to; None for a mixed ensemble or unknown."""
    fams = {f for i in instruments for f, members in FAMILIES.items() if i in members}
    return fams.pop() if len(fams) == 1 else None


def features(wav: np.ndarray, sr: int) -> np.ndarray:
    """Timbre statistics of a mono clip, over time: MFCC and spectral shape (mean, std),
    spectral contrast (mean, std), loudness envelope (onset strength, attack and decay
    rates), and the average 40-band mel spectrum relative to its peak."""
    import librosa

    mag = np.abs(librosa.stft(wav, n_fft=2048, hop_length=512))
    power = mag**2
    mfcc = librosa.feature.mfcc(
        S=librosa.power_to_db(librosa.feature.melspectrogram(S=power, sr=sr)), n_mfcc=20
    )
    shape = np.stack(
        [
            librosa.feature.spectral_centroid(S=mag, sr=sr)[0],
            librosa.feature.spectral_bandwidth(S=mag, sr=sr)[0],
            librosa.feature.spectral_flatness(S=mag)[0],
            librosa.feature.zero_crossing_rate(wav)[0],
        ]
    )
    contrast = librosa.feature.spectral_contrast(S=mag, sr=sr)
    onset = librosa.onset.onset_strength(S=librosa.amplitude_to_db(mag), sr=sr)
    level = np.log(librosa.feature.rms(S=mag)[0] + 1e-5)
    rises = np.diff(level)
    envelope = [onset.mean(), onset.std(), np.percentile(rises, 95), np.percentile(rises, 5)]
    mel = librosa.power_to_db(librosa.feature.melspectrogram(S=power, sr=sr, n_mels=40)).mean(1)
    stats = [mfcc.mean(1), mfcc.std(1), np.log1p(shape.mean(1)), np.log1p(shape.std(1))]
    stats += [contrast.mean(1), contrast.std(1), envelope, [level.std()], mel - mel.max()]
    return np.concatenate(stats)


def beat_tempo(wav: np.ndarray, sr: int) -> float:
    """librosa's beat tracker's tempo estimate (bpm)."""
    import librosa

    bpm, _ = librosa.beat.beat_track(y=wav, sr=sr)
    return float(np.atleast_1d(bpm)[0])


def fold_tempo(bpm: float, low: float, high: float) -> float:
    """``bpm`` halved or doubled until it lies in ``[low, high]`` (``high >= 2 * low``)."""
    while bpm > high:
        bpm /= 2
    while 0 < bpm < low:
        bpm *= 2
    return bpm


def judge_tempo(clip: np.ndarray, sr: int, target: float, trange: tuple[float, float]) -> dict:
    """The tempo judge's verdicts on a clip for a caption's ``target`` bpm, and how far its
    onsets lock to that tempo's grid from the clip's start (every clip here starts on a beat:
    generated ones where the beat clock starts, real ones at their piece's start)."""
    from audiogen.eval.metrics import beat_lock

    raw = beat_tempo(clip, sr)
    bpm = fold_tempo(raw, *trange)
    phase_lock, tempo_lock = beat_lock(clip, sr, target)
    return {
        "judged_bpm": bpm,
        "tempo_ok": tempo_ok(bpm, target, octave=False),
        "tempo_ok_unfolded": tempo_ok(raw, target, octave=False),
        "tempo_ok_octave": tempo_ok(raw, target, octave=True),
        "beat_phase_lock": phase_lock,
        "beat_tempo_lock": tempo_lock,
    }


def tempo_range(rows) -> tuple[float, float]:
    """The held-out captions' tempo range, widened by 10% (and to an octave at least)."""
    bpms = [r["bpm"] for r in rows]
    low, high = min(bpms) / 1.1, max(bpms) * 1.1
    return low, max(high, 2 * low)


def tempo_ok(measured: float, target: float, *, octave: bool) -> bool:
    ratios = (1.0, 0.5, 2.0) if octave else (1.0,)
    return any(abs(measured / (target * r) - 1) <= 0.10 for r in ratios)


@functools.lru_cache(maxsize=64)
def mono(path: Path, sr: int) -> np.ndarray:
    """A file as mono at ``sr`` (cached: judges, tempo and FAD read the same files)."""
    wav, file_sr = audio.load(path)
    return audio.resample(audio.convert_channels(wav, 1), file_sr, sr)[0].numpy()


def window(path: Path, sr: int, seconds: float, offset: float = 0.0) -> np.ndarray:
    wav = mono(path, sr)
    start = int(offset * sr)
    return wav[start : start + int(seconds * sr)]


def family_instruments() -> dict[str, list]:
    """Each family's member instruments of the corpus arranger (name, GM program, range)."""
    from audiogen.data import arrange

    pools = [arrange.MELODY, arrange.ACCOMPANIMENT, arrange.BASS, *arrange.ENSEMBLES.values()]
    known = {i.name: i for pool in pools for i in pool}
    return {f: [known[n] for n in sorted(m) if n in known] for f, m in FAMILIES.items()}


def render_for_judge(midi_path: Path, inst, out: Path, sr: int, seconds: float) -> Path:
    """The first ``seconds`` of a MIDI file, every part on ``inst``, rendered with FluidSynth.

    Transposed by octaves so the median pitch sits mid-range of the instrument; peak
    normalised to -1 dBFS like the corpus. Cached: an existing ``out`` is returned as is.
    """
    if out.is_file():
        return out
    import pretty_midi

    from audiogen.data.corpus import DEFAULT_SOUNDFONT, render_fluidsynth

    pm = pretty_midi.PrettyMIDI(str(midi_path))
    pitches = [n.pitch for part in pm.instruments if not part.is_drum for n in part.notes]
    shift = 12 * round(((inst.low + inst.high) / 2 - float(np.median(pitches))) / 12)
    for part in pm.instruments:
        part.program, part.is_drum = inst.program, False
        part.notes = [n for n in part.notes if n.start < seconds]
        for n in part.notes:
            n.pitch = int(np.clip(n.pitch + shift, 0, 127))
    with tempfile.TemporaryDirectory() as tmp:
        pm.write(str(Path(tmp) / "judge.mid"))
        wav = render_fluidsynth(
            Path(tmp) / "judge.mid", sample_rate=sr, soundfont=DEFAULT_SOUNDFONT
        )
    wav = audio.convert_channels(wav, 1)[:, : int((seconds + 1) * sr)]
    out.parent.mkdir(parents=True, exist_ok=True)
    audio.save(out, audio.normalize_peak(wav, peak_db=-1.0), sr)
    return out


def judge_examples(rows, root: Path, sr: int, seconds: float, cache: Path) -> list[tuple]:
    """``(audio path, family, piece path, real)`` for the family judge: the held-out pieces of
    one family as the corpus renders them (``real``), plus every held-out piece rendered once
    per family."""
    examples = [(root / r["path"], family(r["instruments"]), r["path"], True) for r in rows]
    examples = [e for e in examples if e[1] is not None]
    members_of = family_instruments()
    for k, r in enumerate(rows):
        name = Path(r["path"]).with_suffix("").as_posix().replace("/", "_")
        for fam, members in members_of.items():
            inst = members[k % len(members)]
            out = cache / f"{name}_{inst.program}_{seconds * 2:g}s.flac"
            path = render_for_judge(root / r["midi"], inst, out, sr, 2 * seconds)
            examples.append((path, fam, r["path"], False))
    return examples


def fit_family_judge(examples, sr: int, seconds: float, through=None):
    """Logistic regression on up to 2 windows per example; leave-one-piece-out accuracy.

    ``examples`` from :func:`judge_examples`. Returns the judge fitted on every example,
    its info, and ``without(path)``: a judge fitted without that piece's examples (for
    judging a clip of it, real or through the codec, fairly); the leave-one-piece-out
    accuracy is over the corpus' own renderings (real held-out audio) only.
    ``through``: a function applied to each window first (the codec round trip, for a
    judge of what the codec's own rendering of an instrument sounds like).
    """
    through = through or (lambda clip: clip)
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y, groups, real = [], [], [], []
    for path, fam, group, is_real in examples:
        for off in (0.0, seconds):
            clip = window(path, sr, seconds, off)
            if len(clip) >= 0.9 * seconds * sr:
                x.append(features(through(clip), sr))
                y.append(fam)
                groups.append(group)
                real.append(is_real)
    x, y, groups, real = np.array(x), np.array(y), np.array(groups), np.array(real)

    @functools.cache
    def without(path: str):
        keep = groups != path
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000, C=1.0))
        return model.fit(x[keep], y[keep])

    hits = []
    for g in np.unique(groups[real]):
        mine = (groups == g) & real
        hits += list(without(g).predict(x[mine]) == y[mine])
    info = {
        "windows": len(y),
        "real_windows": int(real.sum()),
        "pieces": len(set(groups)),
        "loo_accuracy_real": float(np.mean(hits)),
    }
    return without(""), info, without  # no piece has the empty path: fitted on all


def round_trip(gen, clip: np.ndarray) -> np.ndarray:
    """``clip`` through the generator's codec: encode, then decode (mono)."""
    with torch.inference_mode():
        wav = torch.from_numpy(clip).float()[None, None].to(gen.device)
        out = gen.codec.decode(gen.codec.encode(wav))
    return out[0].mean(0).float().cpu().numpy()[: len(clip)]


def opus_clip(clip: np.ndarray, r: dict, *, kbps: float, sr: int) -> np.ndarray:
    """``clip`` (of manifest row ``r``) after a libopus round trip at ``kbps``."""
    from bench_codec_quality import opus_roundtrip  # a sibling script

    with tempfile.TemporaryDirectory() as tmp:
        return opus_roundtrip(torch.from_numpy(clip)[None], sr, kbps, Path(tmp))[0].numpy()


def noisy_clip(clip: np.ndarray, r: dict, *, snr_db: float) -> np.ndarray:
    """``clip`` plus white noise ``snr_db`` below its power, seeded by manifest row ``r``'s
    path (every run adds the same noise)."""
    rng = np.random.default_rng(list(r["path"].encode()))
    power = float(np.mean(clip.astype(np.float64) ** 2))
    noise = rng.standard_normal(len(clip)) * np.sqrt(power / 10 ** (snr_db / 10))
    return (clip + noise).astype(np.float32)


def judge_clips(tests, clip_of, judge_without, root: Path, sr: int, trange) -> dict:
    """Family (judged without the clip's piece), tempo and chroma-to-MIDI of test clips."""
    from audiogen.eval.metrics import melody_chroma_cosine

    items = []
    for r in tests:
        clip = clip_of(r)
        fam = family(r["instruments"])
        items.append(
            {
                "family_ok": None
                if fam is None
                else bool(judge_without(r["path"]).predict(features(clip, sr)[None])[0] == fam),
                **judge_tempo(clip, sr, r["bpm"], trange),
                "chroma_cosine": melody_chroma_cosine(
                    root / r["midi"], torch.from_numpy(clip)[None], sr
                ),
            }
        )
    fams = [it["family_ok"] for it in items if it["family_ok"] is not None]
    return {
        "instrument_family_accuracy": float(np.mean(fams)) if fams else float("nan"),
        **tempo_rates(items),
        "chroma_cosine_to_midi": float(np.mean([it["chroma_cosine"] for it in items])),
        "items": items,
    }


def tempo_rates(items) -> dict:
    rate = lambda key: float(np.mean([it[key] for it in items])) if items else float("nan")  # noqa: E731
    return {
        "tempo_within_10pct": rate("tempo_ok"),
        "tempo_within_10pct_unfolded": rate("tempo_ok_unfolded"),
        "tempo_within_10pct_or_octave": rate("tempo_ok_octave"),
        # NaN (a clip without onsets) is left out of the means.
        "beat_phase_lock": float(np.nanmean([it["beat_phase_lock"] for it in items])),
        "beat_tempo_lock": float(np.nanmean([it["beat_tempo_lock"] for it in items])),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--manifest", required=True, type=Path, help="corpus manifest.jsonl")
    ap.add_argument("--model", default="tiny", help="generator directory (default: bundled)")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--limit", type=int, default=0, help="at most this many test prompts")
    ap.add_argument("--cfg", type=float, default=None, help="default: the model's (3.0)")
    ap.add_argument(
        "--melody-cfg",
        type=float,
        default=None,
        help="the melody's own guidance (default: the model's generation.json, else --cfg)",
    )
    ap.add_argument(
        "--tempo-cfg",
        type=float,
        default=None,
        help="the beat clock's own guidance (default: the model's generation.json, else --cfg)",
    )
    ap.add_argument("--temperature", type=float, default=None, help="default: the model's")
    ap.add_argument(
        "--split",
        choices=("test", "valid"),
        default="test",
        help="whose pieces give the prompts (judges and FAD use valid + test either way)",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--save-audio", type=Path, help="also write the generated clips here")
    ap.add_argument(
        "--codec-only",
        action="store_true",
        help="only judge the real clips (of --split) and their codec round trips (no generation)",
    )
    ap.add_argument(
        "--reference-opus",
        type=float,
        nargs="*",
        default=[],
        metavar="KBPS",
        help="also judge the real clips through libopus at these bitrates (needs ffmpeg)",
    )
    ap.add_argument(
        "--reference-noise",
        type=float,
        nargs="*",
        default=[],
        metavar="DB",
        help="also judge the real clips with white noise added at these SNRs (dB)",
    )
    ap.add_argument(
        "--judge-renders",
        type=Path,
        default=Path("benchmarks/results/judge_renders"),
        help="cache of the held-out MIDI rendered once per family for the family judge",
    )
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/adherence.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)

    from audiogen.eval.embeddings import build_embedding
    from audiogen.eval.fad import EmbeddingStats, frechet_distance
    from audiogen.eval.metrics import melody_chroma_cosine
    from audiogen.pipeline import MusicGenerator

    root = args.manifest.parent
    rows = [json.loads(ln) for ln in args.manifest.read_text().splitlines() if ln.strip()]
    held = [r for r in rows if r.get("split") in ("valid", "test")]
    tests = [r for r in held if r.get("split") == args.split and r["duration"] >= args.seconds]
    if args.limit:
        tests = tests[: args.limit]

    gen = MusicGenerator.load(args.model, device="cpu")
    given = {
        "cfg_coef": args.cfg,
        "melody_cfg_coef": args.melody_cfg,
        "tempo_cfg_coef": args.tempo_cfg,
        "temperature": args.temperature,
    }
    gen.set_generation_params(
        duration=args.seconds, **{k: v for k, v in given.items() if v is not None}
    )
    sr = gen.sample_rate
    examples = judge_examples(held, root, sr, args.seconds, args.judge_renders)
    judge, judge_info, judge_without = fit_family_judge(examples, sr, args.seconds)
    trange = tempo_range(held)
    # A second judge fitted on the held-out audio as the codec renders it: generated audio
    # can only sound like the codec's rendering, so this one separates what the LM follows
    # from what the codec keeps.
    codec_judge, codec_judge_info, _ = fit_family_judge(
        examples, sr, args.seconds, through=functools.partial(round_trip, gen)
    )

    # What happens to each real test clip before it is judged: (clip, manifest row) -> clip.
    through = {
        "real": lambda clip, r: clip,
        "codec_round_trip": lambda clip, r: round_trip(gen, clip),
    }
    through |= {
        f"opus_{k:g}kbps": functools.partial(opus_clip, kbps=k, sr=sr) for k in args.reference_opus
    }
    through |= {
        f"white_noise_{db:g}dB": functools.partial(noisy_clip, snr_db=db)
        for db in args.reference_noise
    }
    ceilings = {
        name: judge_clips(
            tests, lambda r, f=f: f(window(root / r["path"], sr, args.seconds), r),
            judge_without, root, sr, trange,
        )
        for name, f in through.items()
    }  # fmt: skip
    brief = {k: {m: v for m, v in c.items() if m != "items"} for k, c in ceilings.items()}
    print(
        json.dumps(
            {
                "judged_test_clips": brief,
                "family_judge": judge_info,
                "codec_judge": codec_judge_info,
                "tempo_range": trange,
            },
            indent=2,
        ),
        flush=True,
    )
    if args.codec_only:
        return 0
    real_tempo = [it["tempo_ok"] for it in ceilings["real"].pop("items")]
    for judged in ceilings.values():
        judged.pop("items", None)
    items, t_gen = [], 0.0
    for i, r in enumerate(tests):
        prompt = r["description"]
        t0 = time.perf_counter()
        plain = gen.generate([prompt], seed=args.seed + i)[0]
        mel = gen.generate_with_melody([prompt], root / r["midi"], seed=args.seed + i)[0]
        t_gen += time.perf_counter() - t0
        mono = plain.mean(0).numpy()
        mel_mono = mel.mean(0).numpy()
        fam = family(r["instruments"])
        item = {
            "piece": r.get("piece", r["path"]),
            "prompt": prompt,
            "family": fam,
            "judged_family": str(judge.predict(features(mono, sr)[None])[0]),
            "judged_family_codec_judge": str(codec_judge.predict(features(mono, sr)[None])[0]),
            "bpm": r["bpm"],
            **judge_tempo(mono, sr, r["bpm"], trange),
            "chroma_with_melody": melody_chroma_cosine(root / r["midi"], mel, sr),
            # The same judges on the clip that also follows the piece's melody.
            "with_melody": {
                "judged_family": str(judge.predict(features(mel_mono, sr)[None])[0]),
                **judge_tempo(mel_mono, sr, r["bpm"], trange),
            },
            "chroma_without_melody": melody_chroma_cosine(root / r["midi"], plain, sr),
        }
        items.append((item, mono, mel_mono))
        print(json.dumps(item), flush=True)
        if args.save_audio:
            args.save_audio.mkdir(parents=True, exist_ok=True)
            audio.save(args.save_audio / f"{i:02d}_text.wav", plain, sr)
            audio.save(args.save_audio / f"{i:02d}_melody.wav", mel, sr)

    mfcc = build_embedding("mfcc")

    def stats(clips: list[np.ndarray]) -> EmbeddingStats:
        emb = np.concatenate([mfcc.embed(torch.from_numpy(c)[None], sr) for c in clips])
        return EmbeddingStats.from_embeddings(emb, embedding="mfcc", version="audiogen")

    real = [window(root / r["path"], sr, args.seconds) for r in held]
    gen_stats, ref_stats = stats([m for _, m, _ in items]), stats(real)
    mel_stats = stats([m for _, _, m in items])
    half_a, half_b = stats(real[0::2]), stats(real[1::2])

    def fd(a: EmbeddingStats, b: EmbeddingStats) -> float:
        return frechet_distance(a.mean, a.cov, b.mean, b.cov)

    items = [it for it, _, _ in items]
    fam_items = [it for it in items if it["family"] is not None]
    mean = lambda xs: float(np.mean(xs)) if xs else float("nan")  # noqa: E731
    result = {
        "model": str(args.model),
        "prompts": len(items),
        "seconds": args.seconds,
        "cfg": gen.params.cfg_coef,
        "melody_cfg": gen.params.melody_cfg_coef,
        "tempo_cfg": gen.params.tempo_cfg_coef,
        "temperature": gen.params.temperature,
        "split": args.split,
        "instrument_family_accuracy": mean(
            [it["family"] == it["judged_family"] for it in fam_items]
        ),
        "instrument_family_prompts": len(fam_items),
        "family_judge": judge_info,
        "instrument_family_accuracy_codec_judge": mean(
            [it["family"] == it["judged_family_codec_judge"] for it in fam_items]
        ),
        "family_codec_judge": codec_judge_info,
        **tempo_rates(items),
        "tempo_range": trange,
        "with_melody": {
            "instrument_family_accuracy": mean(
                [it["family"] == it["with_melody"]["judged_family"] for it in fam_items]
            ),
            **tempo_rates([it["with_melody"] for it in items]),
            "fad_mfcc_generated_vs_heldout": fd(mel_stats, ref_stats),
        },
        "tempo_judge_on_real_test_audio": mean(real_tempo),
        "judged_test_clips": ceilings,
        "chroma_cosine_with_melody": mean([it["chroma_with_melody"] for it in items]),
        "chroma_cosine_without_melody": mean([it["chroma_without_melody"] for it in items]),
        "fad_mfcc_generated_vs_heldout": fd(gen_stats, ref_stats),
        "fad_mfcc_heldout_half_vs_half": fd(half_a, half_b),
        "generation_seconds_per_clip": t_gen / max(1, 2 * len(items)),
        "items": items,
        "machine": platform.processor() or platform.machine(),
    }
    summary = {k: v for k, v in result.items() if k != "items"}
    print(json.dumps(summary, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
