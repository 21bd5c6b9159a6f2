"""Symbolic melodies: data (music21 corpus, MIDI), miditok tokens with key/meter/style
conditions, Markov / LSTM / Transformer melody models, constrained composition, metrics.

    >>> from audiogen.melody.model import load_model
    >>> from audiogen.melody.compose import compose, resolve_request
    >>> result = compose(load_model("tiny"), resolve_request("an Irish jig in G major"), bars=16)
    >>> result.melody.notes[:2]  # MelodyNote(pitch, onset, duration), times in quarter notes

Modules import torch/miditok lazily from here: import the submodule you need.
"""
