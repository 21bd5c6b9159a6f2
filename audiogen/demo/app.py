"""The Gradio page of ``audiogen serve``: prompt, duration, melody, CFG (and the melody's own)
and seed in; audio, spectrogram and the melody's piano roll (or chroma) out.

Requests go through Gradio's queue one at a time. Nothing leaves the machine: analytics
and the version check are off, no share link, no server-side rendering (a Node process),
and the theme uses system fonts instead of fetching web fonts.
"""

from __future__ import annotations

import os
from typing import Any

from audiogen.demo.handler import MELODY_SUFFIXES, DemoHandler
from audiogen.errors import UserError

TITLE = "audiogen"
MAX_UPLOAD = "20mb"


def _gradio():
    # Read by gradio at import and when a Blocks is built; off before either happens.
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import gradio as gr
    except ImportError:
        raise UserError(
            "the web demo needs gradio: pip install 'audiogen[serve]' (or gradio>=6)"
        ) from None
    return gr


def build_app(handler: DemoHandler) -> Any:
    """The page (a ``gradio.Blocks``) with its queue set up; launch it with :func:`launch`."""
    gr = _gradio()
    lim = handler.limits

    def on_generate(prompt, duration, melody, cfg_coef, seed, melody_cfg_coef=None):
        try:
            out = handler(prompt, duration, melody, cfg_coef, seed, melody_cfg_coef)
        except UserError as e:
            return None, None, None, f"error: {e}"
        return out.wav_bytes, out.spectrogram, out.melody_image, out.status

    melody_note = "MIDI or audio" if handler.has_melody else "this model takes no melody"
    with gr.Blocks(title=TITLE, analytics_enabled=False, delete_cache=(3600, 3600)) as demo:
        gr.Markdown(
            f"# {TITLE}\nText- and melody-conditioned music generation. Up to "
            f"{lim.max_duration:g} s of audio and {lim.max_prompt_chars} prompt characters; "
            "requests are served one at a time."
        )
        with gr.Row():
            with gr.Column():
                prompt = gr.Textbox(
                    label="Prompt",
                    lines=2,
                    placeholder="a slow Irish air on fiddle in D minor, 70 bpm",
                    elem_id="prompt",
                )
                melody = gr.File(
                    label=f"Melody (optional: {melody_note})",
                    file_types=list(MELODY_SUFFIXES),
                    type="filepath",
                    elem_id="melody",
                )
                duration = gr.Slider(
                    0.5,
                    lim.max_duration,
                    value=min(8.0, lim.max_duration),
                    step=0.5,
                    label="Duration (s)",
                    elem_id="duration",
                )
                defaults = handler.defaults
                cfg = gr.Slider(
                    0.0, lim.max_cfg, value=defaults.cfg_coef, step=0.5, label="CFG coefficient"
                )
                melody_cfg = gr.Slider(
                    0.0,
                    lim.max_cfg,
                    value=defaults.melody_cfg_coef or defaults.cfg_coef,
                    step=0.5,
                    label="Melody CFG coefficient (with a melody)",
                    visible=handler.has_melody,
                    elem_id="melody-cfg",
                )
                seed = gr.Number(value=-1, precision=0, label="Seed (-1: random)", elem_id="seed")
                button = gr.Button("Generate", variant="primary", elem_id="generate")
            with gr.Column():
                status = gr.Textbox(label="Status", interactive=False, elem_id="status")
                audio_out = gr.Audio(
                    label="Generated audio",
                    interactive=False,
                    buttons=["download"],
                    # The browser's own player: a plain <audio> element with its source.
                    waveform_options=gr.WaveformOptions(show_recording_waveform=False),
                    elem_id="audio",
                )
                # No "share" button: it would upload to the Hugging Face hub.
                view = dict(format="png", interactive=False, buttons=["download", "fullscreen"])
                spectrogram = gr.Image(label="Spectrogram", elem_id="spectrogram", **view)
                melody_view = gr.Image(label="Melody", elem_id="melody-view", **view)
        button.click(
            on_generate,
            inputs=[prompt, duration, melody, cfg, seed, melody_cfg],
            outputs=[audio_out, spectrogram, melody_view, status],
            api_name="generate",
            concurrency_limit=1,
        )
    demo.queue(default_concurrency_limit=1, max_size=32)
    return demo


def launch(
    demo: Any, *, host: str = "127.0.0.1", port: int = 7860, block: bool = True
) -> tuple[Any, str]:
    """Serve the page on ``host:port``; returns (the app, its local URL) when not blocking."""
    gr = _gradio()
    theme = gr.themes.Default(
        font=["ui-sans-serif", "system-ui", "sans-serif"],
        font_mono=["ui-monospace", "monospace"],
    )
    try:
        app, url, _ = demo.launch(
            server_name=host,
            server_port=port,
            share=False,
            ssr_mode=False,
            pwa=False,
            mcp_server=False,
            enable_monitoring=False,
            max_file_size=MAX_UPLOAD,
            theme=theme,
            prevent_thread_lock=not block,
            quiet=False,
        )
    except OSError as e:
        raise UserError(f"cannot serve on {host}:{port} ({e})") from None
    return app, url
