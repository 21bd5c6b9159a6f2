"""keep_freed_memory: applied on glibc, skipped when the user opts out."""

from __future__ import annotations

import platform

import pytest

from audiogen.runtime import keep_freed_memory


def test_opt_out(monkeypatch):
    monkeypatch.setenv("AUDIOGEN_MALLOC", "default")
    assert keep_freed_memory() is False


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_applied_on_glibc(monkeypatch):
    monkeypatch.delenv("AUDIOGEN_MALLOC", raising=False)
    assert keep_freed_memory() is True
