"""Images the demo shows: spectrogram of the generated audio, the melody's piano roll or chroma.

Each function returns an RGB image ``[H, W, 3]`` (uint8) drawn with matplotlib's Agg
backend, so nothing touches the disk and no display is needed.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from audiogen import midi

PITCH_CLASSES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def _figure(width: float = 9.0, height: float = 3.0):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height), dpi=100)


def _to_array(fig) -> np.ndarray:
    import matplotlib.pyplot as plt

    # Fixed margins: tight_layout would draw the figure twice (about a third of the time).
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.17, top=0.89)
    fig.canvas.draw()
    rgb = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return rgb


@lru_cache(maxsize=4)
def _mel(sample_rate: int, n_mels: int):
    import torchaudio

    n_fft = 1024 if sample_rate >= 16000 else 512
    return torchaudio.transforms.MelSpectrogram(
        sample_rate=sample_rate, n_fft=n_fft, hop_length=n_fft // 4, n_mels=n_mels
    )


@torch.no_grad()
def spectrogram_image(wav: torch.Tensor, sample_rate: int, n_mels: int = 80) -> np.ndarray:
    """Log-mel spectrogram (dB) of audio ``[C, T]`` (channels mixed) as an RGB image."""
    mono = wav.float().mean(0)
    mel = _mel(int(sample_rate), n_mels)(mono)
    db = 10.0 * torch.log10(mel.clamp_min(1e-10))
    db = db.clamp_min(db.max() - 80.0).numpy()  # [n_mels, F]
    fig, ax = _figure()
    seconds = mono.shape[-1] / sample_rate
    img = ax.imshow(db, origin="lower", aspect="auto", cmap="magma", extent=(0, seconds, 0, n_mels))
    ax.set_xlabel("time (s)")
    ax.set_ylabel("mel bin")
    ax.set_title("spectrogram of the generated audio")
    fig.colorbar(img, ax=ax, pad=0.01, fraction=0.05).ax.set_title("dB", fontsize=9)
    return _to_array(fig)


def piano_roll_image(notes: list[midi.Note], frame_rate: float = 100.0) -> np.ndarray:
    """The notes as a piano roll (pitch against time) as an RGB image."""
    fig, ax = _figure()
    midi.draw_piano_roll(ax, notes, frame_rate)
    ax.set_title("melody (piano roll of its notes)")
    return _to_array(fig)


def chroma_image(chroma: torch.Tensor | np.ndarray, frame_rate: float) -> np.ndarray:
    """Chroma ``[F, 12]`` (what the model is conditioned on) as an RGB image."""
    c = np.asarray(chroma, dtype=np.float32).T  # [12, F]
    fig, ax = _figure()
    ax.imshow(
        c,
        origin="lower",
        aspect="auto",
        cmap="magma_r",
        extent=(0, c.shape[1] / frame_rate, -0.5, 11.5),
        vmin=0,
        vmax=max(1e-6, float(c.max())),
        interpolation="nearest",
    )
    ax.set_yticks(range(12), PITCH_CLASSES)
    ax.set_xlabel("time (s)")
    ax.set_title("melody (chroma the model follows)")
    return _to_array(fig)
