"""The compiled-kernel loader: builds into its cache, reuses it, and steps aside when asked."""

from __future__ import annotations

import pytest

from audiogen import native


def test_builds_once_into_the_cache_dir(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("AUDIOGEN_CACHE", str(tmp_path))
    native.load.cache_clear()
    try:
        lib = native.load("sr_adamw")
        assert lib is not None
        built = list((tmp_path / "native").glob("sr_adamw-*.so"))
        assert len(built) == 1
        stamp = built[0].stat().st_mtime_ns
        native.load.cache_clear()
        assert native.load("sr_adamw") is not None
        assert built[0].stat().st_mtime_ns == stamp  # reused, not rebuilt
        assert not [p for p in (tmp_path / "native").iterdir() if p not in built]  # no temps
    finally:
        native.load.cache_clear()


@pytest.mark.parametrize("value", ["0", "off"])
def test_audiogen_native_off_gives_none(value: str, monkeypatch) -> None:
    monkeypatch.setenv("AUDIOGEN_NATIVE", value)
    native.load.cache_clear()
    try:
        assert native.load("sr_adamw") is None
    finally:
        native.load.cache_clear()


def test_a_failed_build_is_reported_and_leaves_nothing(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("AUDIOGEN_CACHE", str(tmp_path))
    bad = tmp_path / "broken.c"
    bad.write_text("this is not C;\n")
    with pytest.raises(OSError, match="broken.c"):
        native._build("broken", bad, native._compiler())
    assert list((tmp_path / "native").iterdir()) == []


def test_kernels_follow_torchs_thread_count_in_other_threads() -> None:
    # OpenMP's thread count is per calling thread; a new thread would start from all CPUs.
    import threading

    import torch

    kernel = native.function("pointwise", "elu_f32", "ptr i64 ptr i64 i64 i64 f32")
    lib = native.load("pointwise")
    before = torch.get_num_threads()
    seen = []

    def work() -> None:
        x = torch.randn(4, 16)
        kernel(x.data_ptr(), 16, x.data_ptr(), 16, 4, 16, 1.0)
        seen.append(lib.omp_get_max_threads())

    try:
        torch.set_num_threads(1)
        thread = threading.Thread(target=work)
        thread.start()
        thread.join()
    finally:
        torch.set_num_threads(before)
    assert seen == [1]
