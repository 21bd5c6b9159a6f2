import numpy as np
import pytest
import soundfile as sf
import torch

from audiogen import audio


@pytest.mark.parametrize("suffix", [".wav", ".flac", ".ogg", ".mp3"])
def test_save_load_roundtrip_formats(tmp_path, suffix):
    sr = 32000
    t = torch.arange(sr) / sr
    wav = torch.stack(
        [0.4 * torch.sin(2 * torch.pi * 330 * t), 0.2 * torch.sin(2 * torch.pi * 550 * t)]
    )
    path = audio.save(tmp_path / f"x{suffix}", wav, sr)
    got, got_sr = audio.load(path)
    assert got_sr == sr and got.shape[0] == 2 and got.dtype == torch.float32
    n = min(got.shape[1], wav.shape[1])
    assert abs(got.shape[1] - wav.shape[1]) < 3000  # MP3 encoders add priming frames
    if suffix in (".wav", ".flac"):
        assert torch.allclose(got[:, :n], wav[:, :n], atol=1e-4)
    else:  # lossy: compare spectra, not samples
        spec = lambda x: np.abs(np.fft.rfft(x.numpy(), axis=-1)).argmax(-1)  # noqa: E731
        assert np.array_equal(spec(got[:, :n]), spec(wav[:, :n]))
    assert not list(tmp_path.glob(".*tmp*"))


def test_load_resample_and_channels(sine_wav):
    wav, sr = audio.load(sine_wav, sample_rate=8000, channels=2)
    assert sr == 8000 and wav.shape == (2, 8000)
    freqs = np.fft.rfftfreq(8000, 1 / 8000)
    assert freqs[np.abs(np.fft.rfft(wav[0].numpy())).argmax()] == pytest.approx(440, abs=1)
    mono, _ = audio.load(sine_wav, channels=1)
    assert mono.shape == (1, 16000)


def test_resample_matches_librosa_pitch(sine_wav):
    import librosa

    wav, _ = audio.load(sine_wav)
    ours = audio.resample(wav, 16000, 22050)[0].numpy()
    ref = librosa.resample(wav[0].numpy(), orig_sr=16000, target_sr=22050)
    assert abs(len(ours) - len(ref)) <= 1
    n = min(len(ours), len(ref))
    # Different windowed-sinc kernels: agree closely away from the edges.
    assert np.abs(ours[500 : n - 500] - ref[500 : n - 500]).max() < 2e-2


def test_load_span(sine_wav):
    wav, sr = audio.load(sine_wav, offset=0.25, duration=0.5)
    full, _ = audio.load(sine_wav)
    assert torch.equal(wav, full[:, 4000:12000])


def test_info(sine_wav):
    i = audio.info(sine_wav)
    assert (i.sample_rate, i.channels, i.frames) == (16000, 1, 16000) and i.duration == 1.0


def test_errors_name_the_file(tmp_path):
    missing = tmp_path / "missing.wav"
    with pytest.raises(audio.AudioError, match="missing.wav: no such file"):
        audio.load(missing)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(audio.AudioError, match="empty.wav: file is empty"):
        audio.load(empty)
    junk = tmp_path / "junk.flac"
    junk.write_bytes(b"not audio at all" * 64)
    with pytest.raises(audio.AudioError, match="junk.flac: cannot read audio"):
        audio.load(junk)
    zero = tmp_path / "zero.wav"
    sf.write(zero, np.zeros((0, 1), dtype=np.float32), 16000)
    with pytest.raises(audio.AudioError, match="zero.wav: audio is empty"):
        audio.load(zero)
    nan = tmp_path / "nan.wav"
    sf.write(nan, np.full((100, 1), np.nan, dtype=np.float32), 16000, subtype="FLOAT")
    with pytest.raises(audio.AudioError, match="nan.wav: audio contains non-finite"):
        audio.load(nan)
    with pytest.raises(audio.AudioError, match="unsupported output format"):
        audio.save(tmp_path / "x.xyz", torch.zeros(1, 10), 16000)
    assert not (tmp_path / "x.xyz").exists()


def test_save_failure_leaves_nothing(tmp_path):
    target = tmp_path / "out.wav"
    with pytest.raises(audio.AudioError, match="non-finite"):
        audio.save(target, torch.tensor([[0.0, float("nan")]]), 16000)
    assert list(tmp_path.iterdir()) == []


def test_convert_channels_and_levels():
    x = torch.tensor([[1.0, -1.0], [0.0, 1.0]])
    assert torch.equal(audio.convert_channels(x, 1), torch.tensor([[0.5, 0.0]]))
    assert audio.convert_channels(x[:1], 2).shape == (2, 2)
    assert audio.loudness_db(torch.ones(1, 100)) == pytest.approx(0.0, abs=1e-5)
    assert audio.normalize_peak(0.1 * torch.ones(1, 4), 0.0).max() == pytest.approx(1.0)
