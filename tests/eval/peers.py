"""Peer packages for parity tests, imported without their run-time downloads.

``frechet_audio_distance`` imports ``laion_clap`` at module level, and ``laion_clap``
fetches BERT / RoBERTa / BART tokenizers from the hub when imported (minutes of retries
offline). Only ``calculate_frechet_distance`` is needed here, so an empty placeholder
module stands in for ``laion_clap`` during the import.
"""

from __future__ import annotations

import importlib.util
import sys
import types

import pytest


def fad_reference():
    """frechet-audio-distance's ``calculate_frechet_distance`` as a plain function."""
    if importlib.util.find_spec("frechet_audio_distance") is None:
        pytest.skip("frechet-audio-distance is not installed")
    stubbed = "laion_clap" not in sys.modules
    if stubbed:
        sys.modules["laion_clap"] = types.ModuleType("laion_clap")
    try:
        import frechet_audio_distance.fad as fad
    finally:
        if stubbed:
            del sys.modules["laion_clap"]
    return lambda *a: fad.FrechetAudioDistance.calculate_frechet_distance(None, *a)


def torchvggish():
    """The torchvggish package (its modules build without downloading when asked to)."""
    return pytest.importorskip("torchvggish")
