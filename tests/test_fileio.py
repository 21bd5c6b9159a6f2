import os

import pytest
import torch
from safetensors.torch import save_file

from audiogen.fileio import atomic_path, atomic_write_text


def _mode(path) -> int:
    return os.stat(path).st_mode & 0o777


def test_atomic_files_get_the_mode_a_plain_open_gives(tmp_path):
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    atomic_write_text(tmp_path / "a.txt", "x")
    # safetensors replaces the temp file it is given, which used to leave it 0600.
    with atomic_path(tmp_path / "w.safetensors") as tmp:
        save_file({"w": torch.zeros(2)}, str(tmp))
    assert _mode(tmp_path / "a.txt") == _mode(plain)
    assert _mode(tmp_path / "w.safetensors") == _mode(plain)


def test_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "out.bin"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"partial")
        raise RuntimeError("writer failed")
    assert not target.exists() and list(tmp_path.iterdir()) == []
