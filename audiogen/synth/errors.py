"""Errors the synth raises for problems a user can fix (unknown instrument, bad timbre file)."""

from audiogen.errors import UserError


class SynthError(UserError):
    """A synth input is unusable; the message names the input and the reason."""
