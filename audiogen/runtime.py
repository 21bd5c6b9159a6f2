"""Process-wide settings the command line applies before any work.

glibc's allocator serves every allocation above 128 KiB-32 MiB with a fresh ``mmap`` and
returns it on free, so each audio-rate tensor (tens of MB) is page-faulted in again on
every use. Keeping freed memory in the heap removes that: measured on the 2-core AVX2 CPU,
encode + decode of 10 s with an EnCodec-32 kHz-sized codec fell from 5.8 s to 4.3 s on one
thread (``benchmarks/bench_codec.py --malloc keep``). The price is that the process keeps
its peak memory until it exits, which suits a command; a library import never changes it.
``AUDIOGEN_MALLOC=default`` turns it off.
"""

from __future__ import annotations

import ctypes
import logging
import os

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4


def keep_freed_memory() -> bool:
    """Make glibc keep freed memory for reuse instead of unmapping it. True if applied."""
    if os.environ.get("AUDIOGEN_MALLOC", "keep") == "default":
        return False
    try:
        # The process's own symbols include the C library's: no library search (which
        # would run ldconfig on every command).
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to tune
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    ok = mallopt(_M_MMAP_MAX, 0) == 1
    return bool(ok and mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1)


def quiet_library_warnings() -> None:
    """Silence start-up chatter that says nothing about the user's command: with torchao
    installed, transformers' import makes torch's pytree log a deprecation warning per
    registered enum (seen on every ``audiogen generate``)."""
    logging.getLogger("torch.utils._pytree").setLevel(logging.ERROR)
