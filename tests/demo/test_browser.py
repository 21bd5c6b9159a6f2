"""End to end: ``audiogen serve`` in a subprocess, driven by headless Debian Chromium.

Playwright drives the system browser (/usr/bin/chromium, installed by scripts/setup.sh);
no browser is downloaded. Every request the page makes to another host is blocked and
recorded, so the test also shows that the page needs nothing from the network.
"""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import soundfile as sf

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium (/usr/bin/chromium; scripts/setup.sh)"
)
STARTUP_TIMEOUT = 300.0  # seconds; ~17 s of CPU, but minutes of wall time on a busy 2-core box
REQUEST_TIMEOUT_MS = 60_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(model_dir, tmp_path_factory):
    """``audiogen serve`` on a free port; yields its URL, stops it afterwards."""
    port = _free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    env = dict(os.environ, OMP_NUM_THREADS="1", GRADIO_ANALYTICS_ENABLED="False")
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    cmd = [sys.executable, "-m", "audiogen", "serve", "--model", str(model_dir)]
    cmd += ["--port", str(port), "--max-duration", "5"]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/"
    start = time.monotonic()
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"audiogen serve exited with {proc.returncode}:\n{log.read_text()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() - start > STARTUP_TIMEOUT:
                pytest.fail(
                    f"audiogen serve did not answer in {STARTUP_TIMEOUT:g} s:\n{log.read_text()}"
                )
            time.sleep(0.5)
        print(f"server answered after {time.monotonic() - start:.1f} s")
        yield url, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield b
        b.close()


def _status(page, prefix: str, contains: str = "") -> str:
    """Wait until the status box starts with ``prefix`` and contains ``contains``."""
    page.wait_for_function(
        "([p, c]) => { const v = document.querySelector('#status textarea').value;"
        " return v.startsWith(p) && v.includes(c); }",
        arg=[prefix, contains],
        timeout=REQUEST_TIMEOUT_MS,
    )
    return page.input_value("#status textarea")


def test_generate_in_chromium_plays_audio_and_reports_bad_uploads(
    server, browser, melody_mid, tmp_path
):
    url, proc = server
    external: list[str] = []

    def local_only(route):
        if route.request.url.startswith(url):
            route.continue_()
        else:  # analytics, CDNs, web fonts: none may be needed
            external.append(route.request.url)
            route.abort()

    page = browser.new_page()
    page.route("**/*", local_only)
    page.goto(url)
    page.wait_for_selector("#generate")
    page_had_no_share_button = page.locator("button[aria-label='Share']").count() == 0

    # 1. A text prompt: an <audio> element comes back with a source the browser decodes.
    page.fill("#prompt textarea", "a lively fiddle reel")
    page.fill("#duration input[type=number]", "1")
    page.press("#duration input[type=number]", "Enter")
    page.fill("#seed input", "3")
    page.click("#generate")
    status = _status(page, "generated ")
    assert "1.0 s of audio" in status and "seed 3" in status
    page.wait_for_function(
        "() => { const a = document.querySelector('#audio audio');"
        " return a && a.src && a.readyState >= 1; }",
        timeout=REQUEST_TIMEOUT_MS,
    )
    src, seconds = page.evaluate(
        "() => { const a = document.querySelector('#audio audio'); return [a.src, a.duration]; }"
    )
    assert src.startswith(url) and seconds == pytest.approx(1.0, abs=0.05)
    body = page.request.get(src).body()
    wav, sr = sf.read(io.BytesIO(body), dtype="float32")
    assert len(wav) == pytest.approx(sr, abs=sr * 0.02) and wav.std() > 1e-4
    spec_width = page.evaluate("() => document.querySelector('#spectrogram img').naturalWidth")
    assert spec_width > 0

    # 2. A MIDI melody: its piano roll is shown.
    page.set_input_files("#melody input[type=file]", str(melody_mid))
    page.wait_for_selector(f"#melody td.filename[aria-label='{melody_mid.name}']")
    page.click("#generate")
    _status(page, "generated ", f"melody {melody_mid.name}")
    page.wait_for_function(
        "() => { const i = document.querySelector('#melody-view img');"
        " return i && i.naturalWidth > 0; }",
        timeout=REQUEST_TIMEOUT_MS,
    )

    # 3. A garbage upload: a message on the page, and the server keeps serving.
    page.click("#melody button[aria-label='Clear']")
    garbage = tmp_path / "garbage.mid"
    garbage.write_bytes(b"this is not a MIDI file")
    page.set_input_files("#melody input[type=file]", str(garbage))
    page.wait_for_selector("#melody td.filename[aria-label='garbage.mid']")
    page.click("#generate")
    status = _status(page, "error: ")
    assert status == "error: garbage.mid: not a MIDI file (no 'MThd' header)"
    assert page.evaluate("() => document.querySelector('#audio audio')") is None
    assert proc.poll() is None

    # 4. A prompt over the cap: refused by the server with a message.
    page.click("#melody button[aria-label='Clear']")
    page.fill("#prompt textarea", "x" * 301)
    page.click("#generate")
    _status(page, "error: ", "the prompt has 301 characters; the limit is 300")

    page.close()
    assert external == []
    assert page_had_no_share_button
