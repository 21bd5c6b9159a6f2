"""audiogen: text- and melody-conditioned music generation on neural-codec tokens."""

__version__ = "0.1.0"
