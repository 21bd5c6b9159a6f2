"""Ports are checked against the peers they port, on random weights.

Codes must be identical and audio within 1e-4 of the peer's.
"""

from __future__ import annotations

import pytest
import torch

from audiogen.codecs.convert import from_encodec, from_hf_encodec

encodec = pytest.importorskip("encodec")
ATOL = 1e-4


def _latent_scale(encoder: torch.nn.Module, channels: int, sr: int) -> float:
    with torch.no_grad():
        return float(encoder(torch.randn(1, channels, sr // 10) * 0.3).std())


def _encodec_peer(kind: str, randomize_codebooks):
    if kind == "24khz":
        peer = encodec.EncodecModel.encodec_model_24khz(pretrained=False)
    else:
        peer = encodec.EncodecModel.encodec_model_48khz(pretrained=False)
    randomize_codebooks(peer, scale=_latent_scale(peer.encoder, peer.channels, peer.sample_rate))
    return peer.eval()


@pytest.mark.parametrize(
    ("kind", "seconds", "bandwidth"),
    [("24khz", 0.5, 6.0), ("24khz", 0.37, None), ("48khz", 1.1, 6.0)],
)
def test_from_encodec_matches_peer(kind, seconds, bandwidth, randomize_codebooks):
    peer = _encodec_peer(kind, randomize_codebooks)
    if bandwidth is not None:
        peer.set_target_bandwidth(bandwidth)
    codec = from_encodec(peer)
    assert codec.sample_rate == peer.sample_rate and codec.channels == peer.channels
    assert codec.frame_rate == peer.frame_rate
    x = torch.randn(2, peer.channels, int(seconds * peer.sample_rate)) * 0.3

    with torch.no_grad():
        frames = peer.encode(x)
        ref_audio = peer.decode(frames)
    ref_codes = torch.cat([codes for codes, _ in frames], dim=-1)

    enc = codec.encode_audio(x)
    assert enc.codes.dtype == torch.int64
    assert enc.codes.shape[1] == codec.num_codebooks == ref_codes.shape[1]
    assert torch.equal(enc.codes, ref_codes)
    assert enc.codes.unique().numel() > 20  # the codebooks are really searched
    if peer.normalize:
        ref_scales = torch.cat([s for _, s in frames], dim=-1)
        torch.testing.assert_close(enc.scales, ref_scales, rtol=0, atol=1e-7)
        assert len(frames) > 1  # overlap-add is exercised

    audio = codec.decode(enc.codes, scales=enc.scales)
    assert audio.shape == ref_audio.shape
    assert (audio - ref_audio).abs().max() <= ATOL
    # With the length the output is cut to the input, like the peer's forward.
    assert codec.decode_audio(enc).shape == x.shape


def test_folded_weight_norm_gives_same_output(randomize_codebooks):
    peer = _encodec_peer("24khz", randomize_codebooks)
    codec = from_encodec(peer)
    x = torch.randn(1, 1, 6000) * 0.3
    codes = codec.encode(x)
    ref = codec.decode(codes)
    codec.prepare_for_inference()
    assert torch.equal(codec.encode(x), codes)
    assert (codec.decode(codes) - ref).abs().max() <= 1e-6


def _hf_32khz(randomize_codebooks):
    transformers = pytest.importorskip("transformers")
    # MusicGen's EnCodec (facebook/encodec_32khz): values from transformers' conversion
    # script for "encodec_32khz".
    config = transformers.EncodecConfig(
        sampling_rate=32_000,
        upsampling_ratios=[8, 5, 4, 4],
        target_bandwidths=[2.2],
        num_filters=64,
        codebook_size=2048,
        use_causal_conv=False,
        normalize=False,
        use_conv_shortcut=False,
    )
    peer = transformers.EncodecModel(config).eval()
    randomize_codebooks(peer, scale=_latent_scale(peer.encoder, 1, 32_000))
    return peer


def _check_hf(peer, codec):
    assert (codec.sample_rate, codec.frame_rate) == (32_000, 50)
    assert (codec.num_codebooks, codec.cardinality, codec.channels) == (4, 2048, 1)
    x = torch.randn(2, 1, 16_000) * 0.3
    with torch.no_grad():
        out = peer.encode(x, return_dict=True)
        ref_codes = out.audio_codes[0]  # [chunks=1, B, K, F] -> [B, K, F]
        ref_audio = peer.decode(out.audio_codes, out.audio_scales, return_dict=True).audio_values
    codes = codec.encode(x)
    assert torch.equal(codes, ref_codes)
    assert codes.unique().numel() > 20
    audio = codec.decode(codes)
    assert audio.shape == ref_audio.shape
    assert (audio - ref_audio).abs().max() <= ATOL


def test_from_hf_encodec_model_object(randomize_codebooks):
    peer = _hf_32khz(randomize_codebooks)
    _check_hf(peer, from_hf_encodec(peer))


def test_from_hf_encodec_saved_directory(tmp_path, randomize_codebooks):
    peer = _hf_32khz(randomize_codebooks)
    peer.save_pretrained(tmp_path / "hf")
    _check_hf(peer, from_hf_encodec(tmp_path / "hf"))


def test_from_hf_encodec_48khz_style_segments(randomize_codebooks):
    """HF's chunked, normalised stereo path (48 kHz layout; narrow and short for speed)."""
    transformers = pytest.importorskip("transformers")
    config = transformers.EncodecConfig(
        sampling_rate=48_000,
        audio_channels=2,
        target_bandwidths=[3.0, 6.0, 12.0, 24.0],
        use_causal_conv=False,
        norm_type="time_group_norm",
        normalize=True,
        chunk_length_s=0.2,
        overlap=0.01,
        num_filters=8,
    )
    peer = transformers.EncodecModel(config).eval()
    randomize_codebooks(peer, scale=_latent_scale(peer.encoder, 2, 48_000))
    codec = from_hf_encodec(peer)
    codec.set_bandwidth(6.0)
    x = torch.randn(1, 2, 2 * 9600 + 500) * 0.3  # three chunks, the last one short
    with torch.no_grad():
        out = peer.encode(x, bandwidth=6.0, return_dict=True)
        ref_audio = peer.decode(
            out.audio_codes,
            out.audio_scales,
            last_frame_pad_length=out.last_frame_pad_length,
            return_dict=True,
        ).audio_values
    # HF zero-pads the last chunk's codes to a full chunk; drop that padding.
    n = out.audio_codes.shape[-1]
    chunks = list(out.audio_codes[:-1]) + [
        out.audio_codes[-1][..., : n - out.last_frame_pad_length]
    ]
    enc = codec.encode_audio(x)
    assert torch.equal(enc.codes, torch.cat(chunks, dim=-1))
    torch.testing.assert_close(enc.scales, torch.cat(out.audio_scales, dim=-1), rtol=0, atol=1e-7)
    audio = codec.decode(enc.codes, scales=enc.scales)
    assert audio.shape == ref_audio.shape
    assert (audio - ref_audio).abs().max() <= ATOL
