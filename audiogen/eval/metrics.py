"""Signal metrics: chroma cosine (melody adherence), beat lock (tempo adherence), SI-SDR,
multi-scale mel distance, codec bitrate, and the KL divergence of a classifier's label
distributions."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence

import numpy as np
import torch

from audiogen.conditioners.melody import ChromaExtractor, load_melody_chroma


def chroma_extractor(*, sample_rate: int = 32000, frame_rate: float = 10.0) -> ChromaExtractor:
    """Soft (not argmax) MusicGen chroma on a ``frame_rate`` grid, for comparing melodies.

    ``n_fft`` 4096 at 32 kHz resolves semitones down to ~C3 while keeping frames short
    enough for melodies; the same extractor must serve both sides of a comparison.
    """
    return ChromaExtractor(sample_rate=sample_rate, n_fft=4096, frame_rate=frame_rate, argmax=False)


def chroma_cosine(melody: torch.Tensor, generated: torch.Tensor, *, silence: float = 1e-3) -> float:
    """Mean per-frame cosine similarity of chroma ``melody [F1, 12]`` and ``generated [F2, 12]``.

    Frames are aligned from the start and cut to the shorter; frames where the melody is
    silent (a rest in MIDI: all bins below ``silence``) are skipped, since a rest says
    nothing about pitch. Returns a value in [0, 1] (chroma is non-negative); NaN when no
    frame has a melody note.
    """
    n = min(melody.shape[0], generated.shape[0])
    m, g = melody[:n].double(), generated[:n].double()
    keep = m.amax(dim=-1) > silence
    if not bool(keep.any()):
        return float("nan")
    cos = torch.nn.functional.cosine_similarity(m[keep], g[keep], dim=-1, eps=1e-12)
    return float(cos.mean())


def melody_chroma_cosine(
    melody_path: str | os.PathLike,
    generated: torch.Tensor,
    sample_rate: int,
    *,
    extractor: ChromaExtractor | None = None,
) -> float:
    """Chroma cosine between a melody file (MIDI or audio) and generated audio ``[C, T]``."""
    ex = extractor or chroma_extractor()
    from audiogen import audio

    wav = audio.resample(audio.convert_channels(generated.float(), 1), sample_rate, ex.sample_rate)
    gen = ex(wav)[0]  # [F, 12]
    mel = load_melody_chroma(melody_path, ex, duration=wav.shape[-1] / ex.sample_rate)
    return chroma_cosine(mel, gen)


def si_sdr(reference: torch.Tensor, estimate: torch.Tensor, *, eps: float = 1e-8) -> torch.Tensor:
    """Scale-invariant SDR in dB (Le Roux et al. 2019) over the last axis: ``[..., T]`` → ``[...]``.

    Both signals are made zero-mean; the estimate is projected on the reference and the
    ratio of the projection's energy to the residual's is returned.
    """
    ref = reference.double() - reference.double().mean(-1, keepdim=True)
    est = estimate.double() - estimate.double().mean(-1, keepdim=True)
    alpha = (est * ref).sum(-1, keepdim=True) / (ref.pow(2).sum(-1, keepdim=True) + eps)
    target = alpha * ref
    noise = est - target
    return 10 * torch.log10((target.pow(2).sum(-1) + eps) / (noise.pow(2).sum(-1) + eps))


def multiscale_mel_distance(
    reference: torch.Tensor,
    estimate: torch.Tensor,
    sample_rate: int,
    *,
    windows: Sequence[int] = (32, 64, 128, 256, 512, 1024, 2048),
    n_mels: Sequence[int] = (5, 10, 20, 40, 80, 160, 320),
    clamp: float = 1e-5,
) -> float:
    """DAC's multi-scale mel distance: mean over scales of L1 between log10 mel magnitudes.

    ``reference``/``estimate`` are ``[C, T]`` at ``sample_rate``; window ``w`` uses hop
    ``w // 4`` and a Hann window; magnitudes are clamped at ``clamp`` before the log.
    """
    import torchaudio

    n = min(reference.shape[-1], estimate.shape[-1])
    ref, est = reference[..., :n].float(), estimate[..., :n].float()
    total = 0.0
    for w, m in zip(windows, n_mels, strict=True):
        mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=sample_rate, n_fft=w, hop_length=w // 4, n_mels=m, power=1.0,
            window_fn=torch.hann_window, center=True, mel_scale="slaney", norm="slaney",
        )  # fmt: skip
        a = torch.log10(mel(ref).clamp_min(clamp))
        b = torch.log10(mel(est).clamp_min(clamp))
        total += float((a - b).abs().mean())
    return total / len(windows)


PROMINENCE_BANDS = ((400.0, 800.0), (800.0, 1600.0), (1600.0, 3200.0))


def partial_prominence(
    wav: torch.Tensor,
    sample_rate: int,
    *,
    bands: Sequence[tuple[float, float]] = PROMINENCE_BANDS,
    n_fft: int = 4096,
    floor_db: float = -100.0,
    active_db: float = -80.0,
) -> list[float]:
    """How far the partials stand above the floor between them, per frequency band (dB).

    For each band and STFT frame (``n_fft``, hop ``n_fft // 4``, Hann; magnitudes scaled so
    a full-scale sine peaks near 0 dB, floored at ``floor_db``): the 95th minus the 50th
    percentile of the band's bin levels, averaged over the frames whose loudest bin in the
    band is above ``active_db``. ``wav`` is ``[C, T]`` or ``[T]`` (channels averaged).
    A codec whose output fills the valleys between partials with noise scores lower than
    its input; white noise scores about 6 dB (Rayleigh-distributed magnitudes: 95th / 50th
    percentile = 2.08); NaN for a band with no active frame.
    """
    x = wav.double().reshape(-1, wav.shape[-1]).mean(0)
    window = torch.hann_window(n_fft, dtype=torch.float64)
    spec = torch.stft(
        x,
        n_fft,
        hop_length=n_fft // 4,
        window=window,
        center=True,
        pad_mode="reflect" if x.shape[-1] > n_fft // 2 else "constant",  # reflect needs more
        return_complex=True,
    )
    mag = spec.abs() * (2.0 / float(window.sum()))
    level = 20 * torch.log10(mag.clamp_min(10 ** (floor_db / 20)))
    freqs = torch.arange(mag.shape[0], dtype=torch.float64) * sample_rate / n_fft
    out = []
    for lo, hi in bands:
        band = level[(freqs >= lo) & (freqs < hi)]
        active = band.amax(0) > active_db
        if band.shape[0] < 2 or not bool(active.any()):
            out.append(float("nan"))
            continue
        q = torch.quantile(band[:, active], torch.tensor([0.95, 0.5], dtype=torch.float64), dim=0)
        out.append(float((q[0] - q[1]).mean()))
    return out


def beat_lock(
    wav: torch.Tensor | np.ndarray,
    sample_rate: int,
    bpm: float,
    *,
    start_beats: float = 0.0,
    hop: int = 512,
) -> tuple[float, float]:
    """How far a clip's onsets sit on a beat grid of ``bpm`` that starts at its first sample
    (``start_beats`` into a beat): ``(phase_lock, tempo_lock)``.

    With ``w`` the onset strength (librosa, ``hop`` samples per frame) above its median and
    ``phi`` each frame's time in beats, ``z = sum w exp(2 pi i phi) / sum w``;
    ``phase_lock = Re z`` is 1 when every onset falls on the grid's beats, -1 when every one
    falls halfway between them, about 0 for onsets unrelated to the grid; ``tempo_lock = |z|``
    is the same ignoring where the grid starts (onsets at this tempo, at any phase). ``wav``
    is ``[C, T]`` or ``[T]`` (channels averaged); NaN for a clip without onsets."""
    import librosa

    x = torch.as_tensor(wav, dtype=torch.float32).reshape(-1, np.shape(wav)[-1]).mean(0)
    env = librosa.onset.onset_strength(y=x.numpy(), sr=sample_rate, hop_length=hop)
    w = np.maximum(env - np.median(env), 0.0).astype(np.float64)
    if w.sum() <= 0:
        return float("nan"), float("nan")
    phi = np.arange(len(env)) * hop / sample_rate * bpm / 60.0 + start_beats
    z = (w * np.exp(2j * np.pi * phi)).sum() / w.sum()
    return float(z.real), float(abs(z))


def bitrate_kbps(*, num_codebooks: int, cardinality: int, frame_rate: float) -> float:
    """Bitrate of fixed-rate codes: ``K * log2(cardinality) * frame_rate / 1000`` kbps."""
    return num_codebooks * math.log2(cardinality) * frame_rate / 1000.0


def kl_divergence(
    reference_logits: torch.Tensor, generated_logits: torch.Tensor, *, multilabel: bool = False
) -> torch.Tensor:
    """KL(p_ref || p_gen) per pair of items from classifier logits ``[N, L]`` → ``[N]``.

    ``multilabel`` (AudioSet taggers such as PaSST) treats each label as its own Bernoulli
    (sigmoid) and averages the per-label KL, as audiocraft does; otherwise the logits are
    one softmax distribution.
    """
    r, g = reference_logits.double(), generated_logits.double()
    if multilabel:
        p, q = torch.sigmoid(r), torch.sigmoid(g)
        eps = 1e-12
        kl = p * (torch.log(p + eps) - torch.log(q + eps)) + (1 - p) * (
            torch.log(1 - p + eps) - torch.log(1 - q + eps)
        )
        return kl.mean(-1)
    return (torch.softmax(r, -1) * (torch.log_softmax(r, -1) - torch.log_softmax(g, -1))).sum(-1)


Classifier = Callable[[torch.Tensor, int], torch.Tensor]
"""A local classifier: audio ``[C, T]`` at a sample rate → logits ``[L]``."""


def classifier_kl(
    classifier: Classifier,
    pairs: Sequence[tuple[torch.Tensor, torch.Tensor]],
    sample_rate: int,
    *,
    multilabel: bool = False,
) -> np.ndarray:
    """KL of the classifier's labels on (reference, generated) audio pairs → ``[N]``."""
    ref = torch.stack([classifier(r, sample_rate) for r, _ in pairs])
    gen = torch.stack([classifier(g, sample_rate) for _, g in pairs])
    return kl_divergence(ref, gen, multilabel=multilabel).numpy()
