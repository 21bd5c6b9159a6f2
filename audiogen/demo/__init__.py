"""Web demo (``audiogen serve``): a Gradio page in front of ``MusicGenerator``.

:mod:`audiogen.demo.handler` validates and runs one request (no Gradio import);
:mod:`audiogen.demo.app` builds and serves the page; :mod:`audiogen.demo.plots` draws the
spectrogram, piano roll and chroma images.
"""

from audiogen.demo.handler import DemoHandler, DemoOutput, Limits

__all__ = ["DemoHandler", "DemoOutput", "Limits"]
