"""Chroma cosine with DDSP renderings; SI-SDR and mel distance against references; KL."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from audiogen.eval import metrics


def _write_midi(path, pitches, step: float = 0.5):
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(initial_tempo=120)
    inst = pretty_midi.Instrument(program=73)
    for i, p in enumerate(pitches):
        inst.notes.append(pretty_midi.Note(90, int(p), step * i, step * i + 0.45))
    pm.instruments.append(inst)
    pm.write(str(path))
    return path


@pytest.fixture(scope="module")
def melody(tmp_path_factory):
    """A 12-note melody as MIDI, its shuffled twin, and the DDSP flute rendering of the first."""
    from audiogen import midi
    from audiogen.synth import render_notes

    d = tmp_path_factory.mktemp("melody")
    pitches = [60, 62, 64, 65, 67, 69, 71, 72, 74, 67, 64, 61]
    shuffled = list(np.random.default_rng(3).permutation(pitches))
    assert shuffled != pitches
    mid = _write_midi(d / "true.mid", pitches)
    other = _write_midi(d / "shuffled.mid", shuffled)
    wav = render_notes(midi.load_notes(mid), instrument="flute", sample_rate=32000, reverb=False)
    return mid, other, wav


def test_chroma_cosine_true_melody_high_shuffled_low(melody):
    mid, other, wav = melody
    own = metrics.melody_chroma_cosine(mid, wav, 32000)
    shuffled = metrics.melody_chroma_cosine(other, wav, 32000)
    assert own > 0.8
    assert shuffled < 0.5 and own - shuffled > 0.4


def test_chroma_cosine_audio_melody(tmp_path, melody):
    from audiogen import audio

    mid, other, wav = melody
    ref = audio.save(tmp_path / "ref.wav", wav, 32000)
    assert metrics.melody_chroma_cosine(ref, wav, 32000) > 0.99


def test_chroma_cosine_skips_rests():
    mel = torch.zeros(4, 12)
    mel[0, 0] = mel[2, 7] = 1.0
    gen = torch.full((4, 12), 0.1)
    gen[0, 0] = gen[2, 7] = 1.0
    cos = metrics.chroma_cosine(mel, gen)
    expected = 1.0 / math.sqrt(1 + 11 * 0.01)
    assert cos == pytest.approx(expected, rel=1e-6)
    assert math.isnan(metrics.chroma_cosine(torch.zeros(3, 12), gen))


def test_si_sdr_matches_reference_formula(rng):
    ref = rng.standard_normal((3, 4000))
    est = 0.7 * ref + 0.2 * rng.standard_normal((3, 4000)) + 0.05
    got = metrics.si_sdr(torch.from_numpy(ref), torch.from_numpy(est)).numpy()
    for r, e, g in zip(ref, est, got, strict=True):
        r, e = r - r.mean(), e - e.mean()
        target = (e @ r) / (r @ r) * r
        want = 10 * np.log10((target @ target) / ((e - target) @ (e - target)))
        assert g == pytest.approx(want, rel=1e-9)
    # scale invariance, and a known value: noise at 1/10 the amplitude gives ~20 dB
    x = torch.from_numpy(ref[0])
    assert float(metrics.si_sdr(x, 3.0 * x)) > 100
    noise = torch.from_numpy(rng.standard_normal(4000))
    noise = noise - noise.mean()
    noise = noise - (noise @ (x - x.mean())) / ((x - x.mean()) @ (x - x.mean())) * (x - x.mean())
    noise = noise * (x - x.mean()).norm() / noise.norm() * 0.1
    assert float(metrics.si_sdr(x, x + noise)) == pytest.approx(20.0, abs=1e-6)


def test_mel_distance_single_scale_matches_librosa(rng):
    import librosa

    sr = 16000
    a = rng.standard_normal(8000).astype(np.float32) * 0.1
    b = a + 0.05 * rng.standard_normal(8000).astype(np.float32)
    got = metrics.multiscale_mel_distance(
        torch.from_numpy(a)[None], torch.from_numpy(b)[None], sr, windows=(512,), n_mels=(40,)
    )

    def logmel(x):
        m = librosa.feature.melspectrogram(
            y=x, sr=sr, n_fft=512, hop_length=128, n_mels=40, power=1.0, center=True,
            pad_mode="reflect", htk=False, norm="slaney",
        )  # fmt: skip
        return np.log10(np.maximum(m, 1e-5))

    want = np.abs(logmel(a) - logmel(b)).mean()
    assert got == pytest.approx(want, rel=1e-3)
    assert (
        metrics.multiscale_mel_distance(torch.from_numpy(a)[None], torch.from_numpy(a)[None], sr)
        == 0
    )


def test_bitrate_and_kl():
    assert metrics.bitrate_kbps(num_codebooks=4, cardinality=2048, frame_rate=50) == pytest.approx(
        2.2
    )
    logits = torch.randn(5, 10, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(
        metrics.kl_divergence(logits, logits), torch.zeros(5, dtype=torch.float64), atol=1e-12
    )
    far = metrics.kl_divergence(logits, -logits)
    assert (far > 0).all()
    ref = torch.nn.functional.kl_div(
        torch.log_softmax(-logits.double(), -1), torch.log_softmax(logits.double(), -1),
        log_target=True, reduction="none",
    ).sum(-1)  # fmt: skip
    torch.testing.assert_close(far, ref)
    ml = metrics.kl_divergence(logits, logits + 1.0, multilabel=True)
    assert (ml > 0).all()

    def classifier(wav, sr):  # a stand-in local classifier: loudness bands as logits
        return torch.stack([wav.abs().mean(), wav.pow(2).mean(), wav.max()]).float()

    g = torch.Generator().manual_seed(0)
    pairs = [(torch.randn(1, 800, generator=g), torch.randn(1, 800, generator=g)) for _ in range(3)]
    assert metrics.classifier_kl(classifier, pairs, 16000).shape == (3,)


def test_partial_prominence_separates_partials_from_a_filled_floor():
    sr = 32000
    g = torch.Generator().manual_seed(0)
    t = torch.arange(4 * sr) / sr
    tone = 0.3 * sum(torch.sin(2 * torch.pi * k * 220 * t) / k for k in range(1, 16))
    noise = torch.randn(4 * sr, generator=g)
    # White noise: Rayleigh magnitudes, 95th / 50th percentile 2.08 = 6.4 dB in every band.
    for value in metrics.partial_prominence(0.1 * noise, sr):
        assert 5.5 < value < 7.0
    clean = metrics.partial_prominence(tone, sr)
    filled = metrics.partial_prominence(tone + 0.003 * noise, sr)
    assert all(c > 50 for c in clean)
    assert all(f < c - 3 for f, c in zip(filled, clean, strict=True))
    # [C, T] input is averaged over channels; silence has no active frame.
    stereo = metrics.partial_prominence(torch.stack([tone, tone]), sr)
    assert stereo == pytest.approx(clean)
    assert all(math.isnan(v) for v in metrics.partial_prominence(torch.zeros(sr), sr))
    assert len(metrics.partial_prominence(tone[:1000], sr)) == 3  # shorter than half a window


def test_beat_lock_finds_onsets_on_the_grid():
    sr, bpm = 16000, 120.0
    g = torch.Generator().manual_seed(0)

    def clicks(rate: float, shift_beats: float = 0.0) -> torch.Tensor:
        wav = 0.001 * torch.randn(6 * sr, generator=g)
        period = 60.0 / rate
        t = shift_beats * period
        while t < 6.0:
            i = int(t * sr)
            wav[i : i + 160] += torch.hann_window(160) * torch.sin(torch.arange(160) * 0.9)
            t += period
        return wav

    on, on_any = metrics.beat_lock(clicks(bpm), sr, bpm)
    off, off_any = metrics.beat_lock(clicks(bpm, 0.5), sr, bpm)  # halfway between the beats
    assert on > 0.7 and off < -0.7 and on_any > 0.7 and off_any > 0.7
    # Told where the grid starts, the shifted clicks are on it again.
    assert metrics.beat_lock(clicks(bpm, 0.5), sr, bpm, start_beats=0.5)[0] > 0.7
    # Another tempo, or noise, has no relation to the grid.
    for wav in (clicks(97.0), torch.randn(6 * sr, generator=g)):
        lock, any_phase = metrics.beat_lock(wav, sr, bpm)
        assert abs(lock) < 0.25 and any_phase < 0.25
    stereo = metrics.beat_lock(torch.stack([clicks(bpm)] * 2).numpy(), sr, bpm)
    assert stereo[0] > 0.7
    assert all(math.isnan(v) for v in metrics.beat_lock(torch.zeros(sr), sr, bpm))
