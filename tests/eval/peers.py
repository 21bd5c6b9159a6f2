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


def laion_clap_modules():
    """laion_clap's ``clap_module.model`` and ``clap_module.htsat``, without the package
    ``__init__`` (it builds tokenizers from the hub on import).

    A placeholder package with laion_clap's ``__path__`` stands in while the two submodules
    import; they need nothing from the package itself.
    """
    spec = importlib.util.find_spec("laion_clap")
    if spec is None:
        pytest.skip("laion_clap is not installed")
    stubbed = "laion_clap" not in sys.modules
    if stubbed:
        pkg = types.ModuleType("laion_clap")
        pkg.__path__ = list(spec.submodule_search_locations)
        sys.modules["laion_clap"] = pkg
    try:
        from laion_clap.clap_module import htsat, model
    finally:
        if stubbed:
            del sys.modules["laion_clap"]
    return model, htsat
