"""The demo's request handler: validate one request, generate, and build what the page shows.

It knows nothing of Gradio, so it is tested directly; :mod:`audiogen.demo.app` wires it to
the page. Every problem a visitor can fix (a prompt or duration over the caps, a garbage or
empty melody upload, a melody for a model without melody conditioning) is a
:class:`audiogen.errors.UserError` whose message names the uploaded file by its own name.
"""

from __future__ import annotations

import io
import math
import os
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from audiogen import audio, midi
from audiogen.demo import plots
from audiogen.errors import UserError
from audiogen.pipeline import MusicGenerator

MIDI_SUFFIXES = (".mid", ".midi")
MELODY_SUFFIXES = MIDI_SUFFIXES + audio.READ_SUFFIXES
MAX_SEED = 2**31 - 1


@dataclass(frozen=True)
class Limits:
    """Server-side caps on one request (the page's widgets use the same bounds)."""

    max_duration: float = 30.0  # seconds of audio
    max_prompt_chars: int = 300
    max_cfg: float = 20.0


@dataclass
class DemoRequest:
    """A validated request. prompt None = unconditional; melody: path of the upload."""

    prompt: str | None
    duration: float
    cfg_coef: float
    seed: int
    melody: Path | None
    melody_cfg_coef: float | None = None  # None: the model's default


@dataclass
class DemoOutput:
    """What the page shows for one request."""

    wav_bytes: bytes  # the generated audio as a 16-bit PCM WAV file
    sample_rate: int
    num_samples: int
    spectrogram: np.ndarray  # [H, W, 3] uint8
    melody_image: np.ndarray | None  # [H, W, 3] uint8; None without a melody
    status: str
    seed: int


class DemoHandler:
    """Turns the page's inputs into audio with one :class:`MusicGenerator`.

    Calls are serialised with a lock (the page's queue already runs one at a time): the
    generator's parameters are per instance, so two requests must not interleave.
    """

    def __init__(self, generator: MusicGenerator, limits: Limits | None = None) -> None:
        self.generator = generator
        self.limits = limits or Limits()
        self.defaults = generator.params  # the model's sampling defaults (generation.json)
        self._lock = threading.Lock()

    @property
    def has_melody(self) -> bool:
        return self.generator.model.melody is not None

    def validate(
        self,
        prompt: str | None,
        duration: float | None,
        melody: str | os.PathLike | None,
        cfg_coef: float | None,
        seed: float | None,
        melody_cfg_coef: float | None = None,
    ) -> DemoRequest:
        """Check one request against the caps; raise UserError with the reason.
        melody_cfg_coef None: the model's own default."""
        lim = self.limits
        text = (prompt or "").strip()
        if len(text) > lim.max_prompt_chars:
            raise UserError(
                f"the prompt has {len(text)} characters; the limit is {lim.max_prompt_chars}"
            )
        if duration is None or not math.isfinite(duration) or duration <= 0:
            raise UserError(f"duration must be a number of seconds > 0, got {duration}")
        if duration > lim.max_duration:
            raise UserError(
                f"duration {duration:g} s is over this server's limit of {lim.max_duration:g} s"
            )
        coefs = [("CFG", cfg_coef)]
        if melody_cfg_coef is not None:  # None: the model's default, nothing to check
            coefs.append(("melody CFG", melody_cfg_coef))
        for name, v in coefs:
            if v is None or not math.isfinite(v) or not 0 <= v <= lim.max_cfg:
                raise UserError(
                    f"{name} coefficient must be between 0 and {lim.max_cfg:g}, got {v}"
                )
        if seed is None or (isinstance(seed, float) and math.isnan(seed)) or seed < 0:
            seed_value = secrets.randbelow(MAX_SEED + 1)  # blank or negative: a random seed
        elif seed != int(seed) or seed > MAX_SEED:
            raise UserError(f"seed must be a whole number from 0 to {MAX_SEED}, got {seed}")
        else:
            seed_value = int(seed)
        mel = None
        if melody:
            mel = Path(melody)
            if mel.suffix.lower() not in MELODY_SUFFIXES:
                raise UserError(
                    f"{mel.name}: unsupported melody file type '{mel.suffix}' (use MIDI "
                    f"{'/'.join(MIDI_SUFFIXES)} or audio {'/'.join(audio.READ_SUFFIXES)})"
                )
            if not self.has_melody:
                raise UserError(
                    f"{mel.name}: this model has no melody conditioning; remove the melody"
                )
        mcfg = None if melody_cfg_coef is None else float(melody_cfg_coef)
        return DemoRequest(text or None, float(duration), float(cfg_coef), seed_value, mel, mcfg)

    def melody_image(self, path: Path, duration: float) -> np.ndarray:
        """Piano roll of a MIDI melody (its highest voice, what the model follows) or the
        chroma of an audio melody, over the first ``duration`` seconds."""
        if path.suffix.lower() in MIDI_SUFFIXES:
            notes = [
                midi.Note(n.pitch, n.start, min(n.end, duration), n.velocity)
                for n in midi.load_notes(path, melody=True)
                if n.start < duration
            ]
            if not notes:
                raise UserError(f"{path}: no notes in the first {duration:g} s")
            return plots.piano_roll_image(notes)
        info = audio.info(path)  # garbage uploads fail here, before any decoding
        if info.frames == 0:
            raise UserError(f"{path}: audio is empty (no samples)")
        gen = self.generator
        gen.set_generation_params(duration=duration)
        chroma = gen.melody_chroma(path)
        return plots.chroma_image(chroma, gen.model.melody.extractor.frame_rate)

    def __call__(
        self,
        prompt: str | None,
        duration: float | None,
        melody: str | os.PathLike | None,
        cfg_coef: float | None,
        seed: float | None,
        melody_cfg_coef: float | None = None,
    ) -> DemoOutput:
        """Validate, generate one clip, and draw its spectrogram (and the melody)."""
        req = self.validate(prompt, duration, melody, cfg_coef, seed, melody_cfg_coef)
        try:
            with self._lock:
                return self._run(req)
        except UserError as e:
            # Uploads sit under a server temp path; name them as the visitor knows them.
            msg = str(e)
            if req.melody is not None:
                msg = msg.replace(str(req.melody), req.melody.name)
            raise UserError(msg) from None

    def _run(self, req: DemoRequest) -> DemoOutput:
        gen = self.generator
        mel_img = None if req.melody is None else self.melody_image(req.melody, req.duration)
        mcfg = self.defaults.melody_cfg_coef if req.melody_cfg_coef is None else req.melody_cfg_coef
        gen.set_generation_params(
            duration=req.duration, cfg_coef=req.cfg_coef, melody_cfg_coef=mcfg
        )
        start = time.perf_counter()
        if req.melody is None:
            wav = gen.generate([req.prompt], seed=req.seed)
        else:
            wav = gen.generate_with_melody([req.prompt], str(req.melody), seed=req.seed)
        took = time.perf_counter() - start
        clip = wav[0]  # [C, T]
        sr = gen.sample_rate
        status = (
            f"generated {clip.shape[-1] / sr:.1f} s of audio in {took:.1f} s "
            f"(seed {req.seed}, CFG {req.cfg_coef:g}"
            + (", unconditional: no prompt" if req.prompt is None else "")
            + (f", melody {req.melody.name}" if req.melody is not None else "")
            + (f", melody CFG {mcfg:g}" if req.melody is not None and mcfg is not None else "")
            + ")"
        )
        return DemoOutput(
            wav_bytes=wav_bytes(clip, sr),
            sample_rate=sr,
            num_samples=int(clip.shape[-1]),
            spectrogram=plots.spectrogram_image(clip, sr),
            melody_image=mel_img,
            status=status,
            seed=req.seed,
        )


def wav_bytes(wav: torch.Tensor, sample_rate: int) -> bytes:
    """Audio ``[C, T]`` as a 16-bit PCM WAV file in memory (every browser plays it)."""
    import soundfile as sf

    data = np.clip(wav.detach().float().cpu().numpy().T, -1.0, 1.0)  # [T, C]
    buf = io.BytesIO()
    sf.write(buf, data, int(sample_rate), format="WAV", subtype="PCM_16")
    return buf.getvalue()
