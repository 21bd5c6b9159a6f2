"""Small C kernels compiled on first use with the system C compiler and called via ctypes.

Some hot loops cannot reach memory speed as a chain of torch ops (each op reads and writes
its whole operand, or the work is split into many tiny ops): the stochastic-rounding AdamW
step on bf16 parameters (``sr_adamw.c``), products of weights with the few activation rows
of a decode step (``linear.c``), a whole decode step of fp16-weight layers and top-k
sampling (``decode.c``), the LSTM recurrence of a codec (``lstm.c``) and ELU at audio rate
(``pointwise.c``). Each is a short, dependency-free C file beside this module,
with shared vector math in ``vmath.h``. ``load(name)`` compiles ``name.c`` once per
source (headers included), compiler and CPU (``cc -O3 -march=native -fopenmp``, under
``$AUDIOGEN_CACHE`` or ``~/.cache/audiogen/native``; a second or two) and returns the
``ctypes.CDLL``, or ``None`` when there is no compiler, the build fails, the platform is
not Linux/macOS, or ``AUDIOGEN_NATIVE=0``. Callers then take their pure-torch path, which
computes the same thing more slowly. OpenMP comes from the ``libgomp.so.1`` torch has
already loaded, so the kernels share torch's thread pool and follow
``torch.get_num_threads()``.

No torch headers are involved (a torch C++ extension takes a minute to build): kernels take
raw pointers (``tensor.data_ptr()``) and sizes, and their callers check dtype, device,
contiguity and autograd before calling.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from functools import cache
from pathlib import Path

import torch  # loads the libgomp.so.1 the kernels' OpenMP must resolve to

log = logging.getLogger(__name__)

_HERE = Path(__file__).resolve().parent
_FLAGS = ["-O3", "-march=native", "-fno-math-errno", "-fPIC", "-shared", "-fopenmp", "-std=c11"]


def cache_dir() -> Path:
    root = os.environ.get("AUDIOGEN_CACHE")
    base = Path(root) if root else Path.home() / ".cache" / "audiogen"
    return base / "native"


def enabled() -> bool:
    """False when ``AUDIOGEN_NATIVE=0`` (or ``false``/``off``) asks for the torch paths."""
    return os.environ.get("AUDIOGEN_NATIVE", "1").lower() not in ("0", "false", "off", "no")


@cache
def _cpu_key() -> str:
    """What ``-march=native`` depends on: the CPU model and its feature flags."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.machine() + platform.processor()
    keep = [ln for ln in text.splitlines() if ln.startswith(("model name", "flags"))]
    return "\n".join(sorted(set(keep)))


def _compiler() -> str | None:
    for cc in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if cc and shutil.which(cc):
            return cc
    return None


@cache
def _compiler_version(cc: str) -> str:
    return subprocess.run([cc, "--version"], capture_output=True, text=True).stdout


def _build(name: str, source: Path, cc: str) -> Path:
    version = _compiler_version(cc)
    headers = [h.read_text() for h in sorted(source.parent.glob("*.h"))]  # included by sources
    digest = hashlib.sha256(
        "\0".join([source.read_text(), *headers, version, _cpu_key(), " ".join(_FLAGS)]).encode()
    ).hexdigest()[:16]
    out = cache_dir() / f"{name}-{digest}.so"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    # Build beside the target and rename: ranks of a torchrun job may build at once.
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=out.parent)
    os.close(fd)
    try:
        proc = subprocess.run(
            [cc, *_FLAGS, str(source), "-o", tmp, "-lm"], capture_output=True, text=True
        )
        if proc.returncode != 0:
            raise OSError(f"{cc} failed on {source.name}: {proc.stderr.strip()[:500]}")
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out


@cache
def load(name: str) -> ctypes.CDLL | None:
    """The compiled kernel library ``name`` (``audiogen/native/{name}.c``), or None."""
    if not enabled() or platform.system() not in ("Linux", "Darwin"):
        return None
    cc = _compiler()
    if cc is None:
        log.info("no C compiler found: audiogen uses its torch paths for %s", name)
        return None
    try:
        return ctypes.CDLL(str(_build(name, _HERE / f"{name}.c", cc)))
    except OSError as exc:
        log.warning("native kernel %s unavailable (%s); using the torch path", name, exc)
        return None


#: ctypes argument types by short name, for :func:`function` signatures.
_TYPES = {
    "ptr": ctypes.c_void_p,
    "i64": ctypes.c_int64,
    "u32": ctypes.c_uint32,
    "int": ctypes.c_int,
    "f32": ctypes.c_float,
}


def function(library: str, name: str, args: str, restype: str | None = None):
    """Entry point ``name`` of kernel library ``library`` with its C signature set, or None.

    ``args`` lists the argument types by short name (``"ptr ptr i64 f32"``: ptr, i64, u32,
    int, f32); ``restype`` likewise (None: void). The returned callable first gives the
    calling thread torch's thread count (see :func:`_sync_threads`)."""
    lib = load(library)
    if lib is None:
        return None
    fn = getattr(lib, name)
    fn.argtypes = [_TYPES[a] for a in args.split()]
    fn.restype = _TYPES[restype] if restype else None
    set_threads = lib.omp_set_num_threads  # libgomp's, found through the library's deps
    set_threads.argtypes = [ctypes.c_int]

    def call(*a):
        _sync_threads(set_threads)
        return fn(*a)

    call.__name__ = name
    return call


_thread_state = threading.local()


def _sync_threads(set_threads) -> None:
    """OpenMP keeps the thread count per calling thread: torch sets it in the thread that
    called ``torch.set_num_threads``, and any other thread (a web server's worker) starts
    from OpenMP's default, all CPUs. Give this thread torch's count before a kernel runs."""
    n = torch.get_num_threads()
    if getattr(_thread_state, "threads", None) != n:
        set_threads(n)
        _thread_state.threads = n
