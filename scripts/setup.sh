#!/usr/bin/env bash
# One-time set-up on a fresh Debian + Python 3.11 machine: system packages the tests and the
# corpus builder use, a virtual environment, and audiogen with its dev extras.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3.11}
APT_PKGS="fluidsynth fluid-soundfont-gm ffmpeg chromium"

missing=""
for cmd in fluidsynth ffmpeg; do command -v "$cmd" >/dev/null 2>&1 || missing=1; done
[ -f /usr/share/sounds/sf2/FluidR3_GM.sf2 ] || missing=1
[ -x /usr/bin/chromium ] || missing=1  # the web demo's browser test (tests/demo)
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $APT_PKGS
  elif command -v sudo >/dev/null && command -v apt-get >/dev/null; then
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $APT_PKGS
  else
    echo "warning: install $APT_PKGS yourself (tests that need them are skipped)" >&2
  fi
fi

command -v "$PYTHON" >/dev/null || PYTHON=python3
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip
# TORCH_PKGS lets a machine choose its torch build (e.g. a CUDA wheel index); the project only
# requires torch>=2.4.
if [ -z "${TORCH_PKGS:-}" ] && [ -d /etc/xdg/pip ]; then
  TORCH_PKGS="torch==2.14.1 torchaudio==2.11.0"  # the builds this workplace keeps on disk
fi
"$VENV/bin/pip" install -q ${TORCH_PKGS:-torch torchaudio}
"$VENV/bin/pip" install -q -e ".[dev,serve]"
# Parity-test peers whose metadata pins numpy<2 and pulls laion-clap (which downloads on
# import); the parts the tests use run with numpy 2, so install them without their pins.
"$VENV/bin/pip" install -q resampy torchlibrosa
"$VENV/bin/pip" install -q --no-deps frechet-audio-distance==0.3.4 torchvggish==0.2
# laion_clap's own CLAP module, the peer of audiogen's checkpoint loader (tests import its
# model code only; its package __init__ downloads tokenizers, so its pins are skipped too).
"$VENV/bin/pip" install -q --no-deps laion_clap==1.1.7
"$VENV/bin/pip" install -q h5py ftfy braceexpand  # what its model code imports
