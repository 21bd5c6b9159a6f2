"""Random-weight HF MusicGen peers built from configs (nothing downloads)."""

from __future__ import annotations

import torch

CARD, DIM, K = 32, 32, 4


def decoder_kwargs(**over) -> dict:
    kw = dict(
        vocab_size=CARD,
        hidden_size=DIM,
        num_hidden_layers=2,
        num_attention_heads=4,
        ffn_dim=64,
        num_codebooks=K,
        pad_token_id=CARD,
        bos_token_id=CARD,
        decoder_start_token_id=CARD,
        max_position_embeddings=128,
        dropout=0.0,
    )
    kw.update(over)
    return kw


def _sub_configs():
    from transformers import EncodecConfig, T5Config

    text = T5Config(
        vocab_size=64, d_model=24, d_kv=6, d_ff=32, num_layers=1, num_heads=4, dropout_rate=0.0
    )
    audio = EncodecConfig(
        hidden_size=16,
        num_filters=4,
        codebook_size=CARD,
        upsampling_ratios=[4, 2],
        num_lstm_layers=1,
        target_bandwidths=[5.0],
        sampling_rate=1000,
    )
    return text, audio


def musicgen(seed: int = 0):
    """A tiny random ``MusicgenForConditionalGeneration`` (T5 width 24 -> LM width 32)."""
    from transformers import MusicgenConfig, MusicgenDecoderConfig, MusicgenForConditionalGeneration

    torch.manual_seed(seed)
    text, audio = _sub_configs()
    dec = MusicgenDecoderConfig(**decoder_kwargs())
    cfg = MusicgenConfig(text_encoder=text, audio_encoder=audio, decoder=dec)
    return MusicgenForConditionalGeneration(cfg).eval()


def musicgen_melody(seed: int = 0):
    """A tiny random ``MusicgenMelodyForConditionalGeneration``."""
    from transformers import (
        MusicgenMelodyConfig,
        MusicgenMelodyDecoderConfig,
        MusicgenMelodyForConditionalGeneration,
    )

    torch.manual_seed(seed)
    text, audio = _sub_configs()
    dec = MusicgenMelodyDecoderConfig(**decoder_kwargs())
    cfg = MusicgenMelodyConfig(text_encoder=text, audio_encoder=audio, decoder=dec, chroma_length=6)
    return MusicgenMelodyForConditionalGeneration(cfg).eval()
