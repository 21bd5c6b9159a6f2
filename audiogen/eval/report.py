"""Reports: a JSON file of every number plus a Markdown summary with PNG plots, all
written atomically so an interrupted run never leaves half a report."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from audiogen.fileio import atomic_path, atomic_write_text


@dataclass
class Report:
    """What one evaluation produced; ``summary`` holds the headline numbers."""

    kind: str  # "fad", "clap", "chroma", "codec"
    summary: dict
    details: dict = field(default_factory=dict)
    items: list[dict] = field(default_factory=list)  # per-file rows: {"path": ..., "score": ...}
    failed: list[dict] = field(default_factory=list)  # {"path": ..., "reason": ...}

    def to_json(self) -> dict:
        return {
            "kind": self.kind,
            "summary": self.summary,
            "details": self.details,
            "items": self.items,
            "failed": self.failed,
        }


def _clean(x):
    """JSON cannot hold NaN/inf: write them as null."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    if isinstance(x, np.generic):
        return _clean(x.item())
    return x


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def write_report(
    report: Report, out_dir: str | Path, *, embeddings: dict[str, np.ndarray] | None = None
) -> dict[str, Path]:
    """Write ``<kind>.json``, ``<kind>.md`` and plots into ``out_dir``; returns the paths.

    ``embeddings`` maps a set name to its frames ``[N, D]`` for the PCA scatter.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / f"{report.kind}.json", "markdown": out / f"{report.kind}.md"}
    scores = [r["score"] for r in report.items if r.get("score") is not None]
    scores = [s for s in scores if math.isfinite(s)]
    if scores:
        paths["histogram"] = _histogram(scores, out / f"{report.kind}_items.png", report.kind)
    if embeddings and all(e.shape[0] >= 2 for e in embeddings.values()):
        paths["pca"] = _pca_scatter(embeddings, out / f"{report.kind}_pca.png")
    atomic_write_text(paths["json"], json.dumps(_clean(report.to_json()), indent=2) + "\n")
    atomic_write_text(paths["markdown"], _markdown(report, paths))
    return paths


def _markdown(report: Report, paths: dict[str, Path]) -> str:
    lines = [f"# audiogen eval {report.kind}", "", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {_fmt(v)} |" for k, v in report.summary.items()]
    if report.details:
        lines += ["", "## Details", ""]
        for k, v in report.details.items():
            if isinstance(v, dict):
                lines.append(f"- **{k}**: " + ", ".join(f"{a}={_fmt(b)}" for a, b in v.items()))
            elif not isinstance(v, list):
                lines.append(f"- **{k}**: {_fmt(v)}")
    for key, title in (("histogram", "Per-item scores"), ("pca", "Embeddings (PCA)")):
        if key in paths:
            lines += ["", f"## {title}", "", f"![{title}]({paths[key].name})"]
    if report.items:
        worst = sorted(
            (r for r in report.items if r.get("score") is not None),
            key=lambda r: -r["score"] if report.kind == "fad" else r["score"],
        )[:10]
        lines += ["", "## Items (worst first, at most 10)", "", "| file | score |", "|---|---|"]
        lines += [f"| {Path(r['path']).name} | {_fmt(r['score'])} |" for r in worst]
    if report.failed:
        lines += ["", f"## Skipped files ({len(report.failed)})", ""]
        lines += [f"- `{f['path']}`: {f['reason']}" for f in report.failed]
    return "\n".join(lines) + "\n"


def _histogram(scores: list[float], path: Path, kind: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.hist(scores, bins=min(30, max(5, len(scores) // 2)), color="#4477aa")
    ax.set_xlabel(f"per-item {kind} score")
    ax.set_ylabel("items")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return path


def _pca_scatter(embeddings: dict[str, np.ndarray], path: Path, max_points: int = 2000) -> Path:
    """2-D PCA of all sets' frames (fitted on their union), one colour per set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(0)
    sub = {}
    for name, e in embeddings.items():
        idx = rng.choice(e.shape[0], size=min(max_points, e.shape[0]), replace=False)
        sub[name] = np.asarray(e[idx], np.float64)
    allx = np.concatenate(list(sub.values()))
    mean = allx.mean(0)
    _, _, vt = np.linalg.svd(allx - mean, full_matrices=False)
    fig, ax = plt.subplots(figsize=(5, 5))
    for name, e in sub.items():
        xy = (e - mean) @ vt[:2].T
        ax.scatter(xy[:, 0], xy[:, 1], s=4, alpha=0.5, label=f"{name} ({e.shape[0]})")
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return path
