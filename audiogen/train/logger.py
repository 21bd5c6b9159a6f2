"""Training logs: tqdm progress, TensorBoard scalars, a JSON-lines file; non-finite guard.

Named ``logger`` so it does not shadow the standard ``logging`` module. Only rank 0 logs;
other ranks get a disabled logger so the loop has no rank checks.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

from audiogen.errors import UserError
from audiogen.fileio import atomic_write_text


class TrainLogger:
    """Writes ``OUT/train_log.jsonl``, ``OUT/tensorboard/`` and a progress bar (rank 0)."""

    def __init__(
        self,
        out_dir: Path,
        *,
        enabled: bool,
        total_steps: int,
        start_step: int,
        tensorboard: bool,
        progress: bool,
    ) -> None:
        self.enabled = enabled
        self._jsonl = None
        self._tb = None
        self._bar = None
        if not enabled:
            return
        out_dir.mkdir(parents=True, exist_ok=True)
        log_path = out_dir / "train_log.jsonl"
        _drop_entries_after(log_path, start_step)
        self._jsonl = open(log_path, "a", encoding="utf-8")  # noqa: SIM115
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise UserError(
                    "train.tensorboard = true needs the 'tensorboard' package "
                    "(pip install tensorboard), or set train.tensorboard = false"
                ) from None
            self._tb = SummaryWriter(log_dir=str(out_dir / "tensorboard"), purge_step=start_step)
        if progress:
            from tqdm import tqdm

            self._bar = tqdm(
                total=total_steps,
                initial=start_step,
                desc="train",
                unit="step",
                file=sys.stderr,
                dynamic_ncols=True,
            )

    def log(self, step: int, scalars: dict[str, float]) -> None:
        """Record scalars (loss, lr, grad_norm, items_per_s, ...) at ``step``."""
        if not self.enabled:
            return
        self._jsonl.write(json.dumps({"step": step, **scalars}) + "\n")
        self._jsonl.flush()
        if self._tb is not None:
            for k, v in scalars.items():
                self._tb.add_scalar(f"train/{k}", v, step)
        if self._bar is not None:
            shown = {k: f"{v:.4g}" for k, v in scalars.items() if k in ("loss", "lr")}
            self._bar.set_postfix(shown, refresh=False)

    def advance(self, n: int = 1) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def print(self, text: str) -> None:
        """Print on rank 0 without breaking the progress bar."""
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.write(text, file=sys.stderr)
        else:
            print(text, file=sys.stderr)

    def close(self) -> None:
        for h in (self._bar, self._tb, self._jsonl):
            if h is not None:
                h.close()
        self._bar = self._tb = self._jsonl = None


def _drop_entries_after(path: Path, step: int) -> None:
    """On resume, forget entries a killed run wrote after its last checkpoint."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            if json.loads(line)["step"] <= step:
                kept.append(line)
        except (json.JSONDecodeError, KeyError, TypeError):
            continue  # a line cut short by the kill
    atomic_write_text(path, "".join(f"{line}\n" for line in kept))


@dataclass
class NonFiniteGuard:
    """Counts non-finite losses; after ``limit`` in a row, stops training with a UserError."""

    limit: int
    consecutive: int = 0
    total: int = 0

    def should_skip(self, loss: float, *, step: int, last_checkpoint: str | None) -> bool:
        """True if the step must be skipped; raises after ``limit`` consecutive bad steps."""
        if math.isfinite(loss):
            self.consecutive = 0
            return False
        self.consecutive += 1
        self.total += 1
        if self.consecutive >= self.limit:
            kept = last_checkpoint or "none written yet"
            raise UserError(
                f"loss was non-finite for {self.consecutive} steps in a row (step {step}); "
                f"stopping. Last good checkpoint: {kept}. Try a lower optim.lr or "
                "train.precision = 'fp32'"
            )
        return True
