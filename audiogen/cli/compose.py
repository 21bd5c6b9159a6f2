"""``audiogen compose``: a melody from a short description; optionally render or arrange it."""

from __future__ import annotations

import argparse
from pathlib import Path

from audiogen.errors import UserError

_MIDI = (".mid", ".midi")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "compose",
        help="compose a melody (MIDI) from a description; render or arrange it",
        description="Compose a monophonic melody with a melody model. Conditions come from the "
        "flags, else the description ('an Irish reel in D major'), else a primed melody. "
        "Pitches stay in the key (unless --chromatic) and in --range; the melody has exactly "
        "--bars bars (after the prime's bars with --prime) and ends on a complete bar.",
    )
    p.add_argument("description", nargs="?", default="", help="e.g. 'an Irish reel in D major'")
    p.add_argument("-o", "--out", required=True, help="output melody (.mid); with --arrange: audio")
    p.add_argument("--key", help="tonic with optional mode, e.g. D, 'F# minor', 'A dorian'")
    p.add_argument("--mode", help="major, minor, dorian or mixolydian (overrides the key's)")
    p.add_argument("--meter", help="e.g. 6/8 (default: from the tune type, else 4/4)")
    p.add_argument("--style", help="irish, english, german, chinese, chorale or none")
    p.add_argument("--bars", type=int, default=16, help="bars to compose (default 16)")
    p.add_argument("--tempo", type=float, help="quarter notes per minute")
    p.add_argument("--model", default="tiny", help="tiny (Transformer), lstm, markov or a DIR")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-p", type=float, default=0.95)
    p.add_argument("--range", dest="pitch_range", default="55-84", help="LOW-HIGH (MIDI or G3-C6)")
    p.add_argument("--chromatic", action="store_true", help="allow notes outside the key")
    p.add_argument("--prime", help="continue this melody (MIDI file; highest voice)")
    p.add_argument("--render", help="also render the melody with the DDSP synth to this audio file")
    p.add_argument("--instrument", default="flute", help="DDSP preset for --render")
    p.add_argument("--arrange", metavar="PROMPT", help="generate audio following the melody")
    p.add_argument("--model-audio", default="tiny", help="generator for --arrange (tiny or DIR)")
    p.set_defaults(func=run)


def _check_out(path: str, suffixes: tuple[str, ...], flag: str) -> Path:
    out = Path(path)
    if out.suffix.lower() not in suffixes:
        raise UserError(f"{out}: {flag} must end in {' or '.join(suffixes)}")
    if out.is_dir() or not out.parent.is_dir():
        raise UserError(f"{out}: cannot write {flag} there (missing directory?)")
    return out


def run(args: argparse.Namespace) -> int:
    from audiogen.audio import WRITE_FORMATS
    from audiogen.melody.compose import compose, parse_range, resolve_request
    from audiogen.melody.data import melody_from_midi, write_midi
    from audiogen.melody.model import load_model

    audio_exts = tuple(WRITE_FORMATS)
    if args.arrange:
        audio_out = _check_out(args.out, audio_exts, "-o (with --arrange)")
        midi_out = audio_out.with_suffix(".mid")
    else:
        midi_out = _check_out(args.out, _MIDI, "-o")
    render_out = _check_out(args.render, audio_exts, "--render") if args.render else None
    if render_out is not None:
        from audiogen.synth import get_preset

        get_preset(args.instrument)
    generator = None
    if args.arrange:
        generator = _load_generator(args.model_audio)
    pitch_range = parse_range(args.pitch_range)
    prime = melody_from_midi(args.prime) if args.prime else None
    request = resolve_request(
        args.description,
        key=args.key,
        mode=args.mode,
        meter=args.meter,
        style=args.style,
        tempo=args.tempo,
        prime=prime,
    )
    model = load_model(args.model)
    result = compose(
        model,
        request,
        bars=args.bars,
        prime=prime,
        seed=args.seed,
        temperature=args.temperature,
        top_p=args.top_p,
        pitch_range=pitch_range,
        in_key=not args.chromatic,
    )
    mel = result.melody
    write_midi(mel, midi_out)
    n, d = mel.meter
    print(
        f"wrote {midi_out}: {len(mel.notes)} notes, {args.bars} bars of {n}/{d} in "
        f"{mel.key.name} ({mel.style}), composed by {model.name} in {result.seconds:.2f} s"
    )
    if render_out is not None:
        _render(mel, render_out, args.instrument, args.seed)
    if generator is not None:
        from audiogen import audio

        seconds = mel.num_bars * mel.bar_length * 60.0 / mel.tempo
        generator.set_generation_params(duration=seconds)
        wav = generator.generate_with_melody([args.arrange], str(midi_out), seed=args.seed)[0]
        audio.save(audio_out, wav, generator.sample_rate)
        print(f"wrote {audio_out}: {seconds:.1f} s arranged from '{args.arrange}'")
    return 0


def _load_generator(spec: str):
    from audiogen.pipeline import ASSETS, MusicGenerator

    if spec == "tiny" and not (ASSETS / "tiny").is_dir():
        raise UserError(
            "--arrange: this install has no bundled tiny audio model yet; pass "
            "--model-audio DIR (a generator directory)"
        )
    return MusicGenerator.load(spec)


def _render(mel, path: Path, instrument: str, seed: int) -> None:
    from audiogen import audio
    from audiogen.midi import Note
    from audiogen.synth import render_notes

    spq = 60.0 / mel.tempo
    notes = [Note(n.pitch, n.onset * spq, (n.onset + n.duration) * spq, 90) for n in mel.notes]
    sr = 32000
    wav = render_notes(notes, instrument=instrument, sample_rate=sr, seed=seed)
    audio.save(path, wav, sr)
    print(f"wrote {path}: {wav.shape[-1] / sr:.1f} s rendered with {instrument}")
