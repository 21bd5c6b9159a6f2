import numpy as np
import pytest
import torch

from audiogen import midi
from audiogen.conditioners.melody import (
    ChromaExtractor,
    MelodyConditioner,
    chroma_from_notes,
    load_melody_chroma,
)


def _tones(freqs, sr=32000, seconds=1.0):
    t = torch.arange(int(sr * seconds)) / sr
    return torch.cat([0.3 * torch.sin(2 * torch.pi * f * t) for f in freqs])


def test_chroma_equals_hf_musicgen_melody_feature_extractor():
    from transformers import MusicgenMelodyFeatureExtractor

    hf = MusicgenMelodyFeatureExtractor()
    ours = ChromaExtractor()
    g = torch.Generator().manual_seed(0)
    wav = _tones([261.63, 329.63, 392.0, 440.0], seconds=1.5) + 0.01 * torch.randn(
        int(32000 * 6), generator=g
    )
    batch = torch.stack([wav, wav.flip(0)])  # [B, T]
    ref = hf._torch_extract_fbank_features(batch.clone())
    got = ours(batch)
    assert got.shape == ref.shape
    assert torch.equal(got, ref)
    # Without argmax the normalised chroma matches too (same filters, same spectrogram).
    raw = ChromaExtractor(argmax=False)(batch)
    assert torch.equal(raw.argmax(-1), ref.argmax(-1))


def test_chroma_short_input_padding_matches_hf():
    from transformers import MusicgenMelodyFeatureExtractor

    hf = MusicgenMelodyFeatureExtractor()
    wav = _tones([440.0], seconds=0.2)[None]
    assert torch.equal(ChromaExtractor()(wav), hf._torch_extract_fbank_features(wav.clone()))


def test_chroma_finds_pitch_class_at_lm_frame_rate():
    ex = ChromaExtractor(n_fft=4096, frame_rate=50)
    wav = _tones([440.0, 523.25], seconds=1.0)[None]  # A4 then C5
    c = ex(wav)[0]
    assert c.shape[0] == ex.num_frames(wav.shape[-1]) and ex.frame_rate == 50
    assert (c[10:40].argmax(-1) == 9).all() and (c[60:90].argmax(-1) == 0).all()


def test_chroma_from_notes_one_hot_and_rests():
    notes = [midi.Note(62, 0.0, 0.5, 100), midi.Note(67, 1.0, 1.5, 100)]
    c = chroma_from_notes(notes, frame_rate=10, num_frames=15)
    assert torch.equal(c.sum(-1), torch.ones(15))
    assert (c[:5].argmax(-1) == 2).all() and (c[5:10].argmax(-1) == 0).all()
    assert (c[10:].argmax(-1) == 7).all()


def test_load_melody_chroma_from_midi_and_audio(tmp_path, melody_mid):
    from audiogen import audio

    ex = ChromaExtractor(n_fft=2048, frame_rate=25)
    c = load_melody_chroma(melody_mid, ex)
    assert [int(i) for i in c[[5, 17, 30, 42]].argmax(-1)] == [0, 4, 7, 0]
    wav = _tones([440.0], seconds=1.0)[None]
    path = audio.save(tmp_path / "a.wav", wav, 32000)
    ca = load_melody_chroma(path, ex)
    assert ca.shape == (ex.num_frames(32000), 12) and (ca[5:20].argmax(-1) == 9).all()


def test_melody_conditioner_tiles_like_musicgen_melody():
    ex = ChromaExtractor()
    cond = MelodyConditioner(extractor=ex, output_dim=16, chroma_length=10)
    chroma = np.eye(12, dtype=np.float32)[[3, 5, 7]]  # 3 frames
    tok = cond.tokenize([chroma, None])
    assert tok.chroma.shape == (2, 10, 12) and tok.mask.all()
    assert tok.chroma[0].argmax(-1).tolist() == [3, 5, 7] * 3 + [3]  # tiled, cut to 10
    assert (tok.chroma[1].argmax(-1) == 0).all() and tok.present.tolist() == [True, False]
    out = cond(tok)
    assert out.emb.shape == (2, 10, 16)
    # Null melody is the projection of one-hot bin 0 (weight column 0 + bias), not zeros.
    expect = cond.proj.weight[:, 0] + cond.proj.bias
    assert torch.allclose(out.emb[1, 4], expect)


def test_melody_conditioner_pads_and_masks_without_chroma_length():
    cond = MelodyConditioner(extractor=ChromaExtractor(), output_dim=8)
    a = np.eye(12, dtype=np.float32)[[1, 2, 3, 4]]
    b = np.eye(12, dtype=np.float32)[[5, 6]]
    tok = cond.tokenize([a, b])
    assert tok.mask.tolist() == [[True] * 4, [True, True, False, False]]
    out = cond(tok)
    assert out.emb[1, 2:].abs().sum() == 0


@pytest.mark.parametrize("bad", [[], [None]])
def test_melody_conditioner_null_only(bad):
    cond = MelodyConditioner(extractor=ChromaExtractor(), output_dim=8)
    tok = cond.tokenize(bad, num_frames=5)
    assert tok.chroma.shape == (len(bad), 5, 12)
