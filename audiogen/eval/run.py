"""One function per ``audiogen eval`` command: read sets, compute, return a :class:`Report`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from audiogen import audio
from audiogen.errors import UserError
from audiogen.eval import metrics
from audiogen.eval.embeddings.base import EmbeddingModel
from audiogen.eval.fad import EmbeddingStats, fad_infinity, per_item_scores
from audiogen.eval.report import Report
from audiogen.eval.sets import EmbeddedSet, Failure, embed_files, list_audio


def _failed(failures: list[Failure], set_name: str) -> list[dict]:
    return [{"path": f.path, "reason": f.reason, "set": set_name} for f in failures]


def _embedded_stats(s: EmbeddedSet, model: EmbeddingModel, what: str) -> EmbeddingStats:
    frames = s.stacked()
    if frames.shape[0] < 2:
        raise UserError(
            f"{what}: fewer than 2 {model.name} frames from {len(s.paths)} usable files "
            f"({len(s.failed)} skipped); nothing to compare"
        )
    return EmbeddingStats.from_embeddings(frames, embedding=model.name, version=model.version)


def evaluate_fad(
    *,
    reference: str | os.PathLike,
    generated: str | os.PathLike,
    model: EmbeddingModel,
    save_stats: str | os.PathLike | None = None,
    infinity: bool = False,
    progress: bool = True,
) -> tuple[Report, dict[str, np.ndarray]]:
    """FAD of ``generated`` (folder or manifest) against ``reference`` (folder, manifest or
    a stats ``.npz``). Returns the report and the frames of each set (for plots).

    ``save_stats`` writes the reference statistics for reuse; ``infinity`` adds FAD∞.
    """
    frames: dict[str, np.ndarray] = {}
    failed: list[dict] = []
    ref_path = Path(reference)
    if ref_path.suffix == ".npz":
        ref_stats = EmbeddingStats.load(ref_path)
        if (ref_stats.embedding, ref_stats.version) != (model.name, model.version):
            raise UserError(
                f"{ref_path}: statistics are for {ref_stats.embedding} ({ref_stats.version}), "
                f"not {model.name} ({model.version})"
            )
    else:
        ref_set = embed_files(list_audio(ref_path), model, desc="reference", progress=progress)
        failed += _failed(ref_set.failed, "reference")
        ref_stats = _embedded_stats(ref_set, model, f"reference {ref_path}")
        frames["reference"] = ref_set.stacked()
    if save_stats is not None:
        ref_stats.save(save_stats)
    gen_set = embed_files(list_audio(generated), model, desc="generated", progress=progress)
    failed += _failed(gen_set.failed, "generated")
    gen_stats = _embedded_stats(gen_set, model, f"generated {generated}")
    frames["generated"] = gen_set.stacked()

    summary = {
        "fad": ref_stats.distance(gen_stats),
        "embedding": model.name,
        "reference_frames": ref_stats.count,
        "generated_frames": gen_stats.count,
        "generated_files": len(gen_set.paths),
        "skipped_files": len(failed),
    }
    details: dict = {"embedding": model.describe()}
    if infinity:
        inf = fad_infinity(ref_stats, frames["generated"])
        summary["fad_inf"] = inf.value
        details["fad_inf"] = {"slope": inf.slope, "r2": inf.r2, "ns": inf.ns, "scores": inf.scores}
    scores = per_item_scores(ref_stats, gen_set.items)
    items = [{"path": p, "score": s} for p, s in zip(gen_set.paths, scores, strict=True)]
    return Report("fad", summary, details, items, failed), frames


def _captions(source: Path) -> dict[str, str]:
    """``path -> caption`` from a JSONL manifest (``description`` or ``text`` field)."""
    base = source.resolve().parent
    out = {}
    with open(source, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
                text = d.get("description") or d.get("text")
                out[str((base / d["path"]).resolve())] = text
            except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
                raise UserError(
                    f"{source}:{lineno}: expected JSON with 'path' and 'description'"
                ) from None
    return out


def evaluate_clap(
    *,
    generated: str | os.PathLike,
    model,
    text: str | None = None,
    progress: bool = True,
) -> Report:
    """CLAP text-audio score: cosine of each clip's (window-mean) audio embedding with its
    caption's text embedding. Captions come from ``text`` (one for all) or from the
    ``description`` field of the ``generated`` manifest."""
    src = Path(generated)
    captions = {} if text is not None else (_captions(src) if src.is_file() else None)
    if captions is None:
        raise UserError("clap: give --text, or a manifest whose lines have 'description'")
    model.require_text()
    emb = embed_files(list_audio(src), model, desc="clap", progress=progress)
    texts, keep = [], []
    for i, p in enumerate(emb.paths):
        t = text if text is not None else captions.get(str(Path(p).resolve()))
        if t:
            texts.append(t)
            keep.append(i)
    if not keep:
        raise UserError(f"clap: no readable clip in {src} has a caption")
    from audiogen.eval.embeddings.clap import clap_score

    audio_emb = np.stack([emb.items[i].mean(0) for i in keep])
    scores = clap_score(audio_emb, model.embed_text(texts))
    items = [
        {"path": emb.paths[i], "text": t, "score": float(s)}
        for i, t, s in zip(keep, texts, scores, strict=True)
    ]
    summary = {"clap_score": float(scores.mean()), "items": len(items)}
    return Report(
        "clap", summary, {"embedding": model.describe()}, items, _failed(emb.failed, "generated")
    )


def _pairs(melody: Path, generated: Path) -> list[tuple[Path, Path]]:
    """Pair melody and generated files: two files, or two folders matched by file stem."""
    if melody.is_file() and generated.is_file():
        return [(melody, generated)]
    if not (melody.is_dir() and generated.is_dir()):
        raise UserError("chroma: --melody and --generated must both be files or both folders")
    suffixes = (".mid", ".midi", *audio.READ_SUFFIXES)
    mel: dict[str, Path] = {}
    for p in sorted(melody.rglob("*")):
        if p.is_file() and p.suffix.lower() in suffixes:
            mel.setdefault(p.stem, p)
    pairs = [(mel[g.stem], g) for g in list_audio(generated) if g.stem in mel]
    if not pairs:
        raise UserError(f"chroma: no file in {generated} has a same-named melody in {melody}")
    return pairs


def evaluate_chroma(
    *, melody: str | os.PathLike, generated: str | os.PathLike, progress: bool = True
) -> Report:
    """Chroma cosine between each melody (MIDI or audio) and its generated audio."""
    ex = metrics.chroma_extractor()
    items, failed = [], []
    for mel, gen in tqdm(_pairs(Path(melody), Path(generated)), disable=not progress, leave=False):
        try:
            wav, sr = audio.load(gen)
            score = metrics.melody_chroma_cosine(mel, wav, sr, extractor=ex)
        except UserError as e:
            failed.append({"path": str(gen), "reason": str(e), "set": "generated"})
            continue
        items.append({"path": str(gen), "melody": str(mel), "score": score})
    valid = [r["score"] for r in items if np.isfinite(r["score"])]
    summary = {
        "chroma_cosine": float(np.mean(valid)) if valid else float("nan"),
        "items": len(items),
        "skipped_files": len(failed),
    }
    details = {"chroma": {"sample_rate": ex.sample_rate, "n_fft": ex.n_fft, "hop": ex.hop_length}}
    return Report("chroma", summary, details, items, failed)


def evaluate_codec(*, codec, audio_source: str | os.PathLike, progress: bool = True) -> Report:
    """Round-trip each file through ``codec``: SI-SDR, multi-scale mel distance, bitrate."""
    items, failed = [], []
    for p in tqdm(list_audio(audio_source), desc="codec", disable=not progress, leave=False):
        try:
            wav, _ = audio.load(p, sample_rate=codec.sample_rate, channels=codec.channels)
        except UserError as e:
            failed.append({"path": str(p), "reason": str(e), "set": "audio"})
            continue
        with torch.inference_mode():
            rec = codec.decode_audio(codec.encode_audio(wav[None]))[0]
        items.append(
            {
                "path": str(p),
                "score": float(metrics.si_sdr(wav, rec).mean()),
                "mel_distance": metrics.multiscale_mel_distance(wav, rec, codec.sample_rate),
            }
        )
    if not items:
        raise UserError(f"codec: no readable audio in {audio_source}")
    kbps = metrics.bitrate_kbps(
        num_codebooks=codec.num_codebooks,
        cardinality=codec.cardinality,
        frame_rate=codec.frame_rate,
    )
    summary = {
        "si_sdr_db": float(np.mean([r["score"] for r in items])),
        "mel_distance": float(np.mean([r["mel_distance"] for r in items])),
        "kbps": kbps,
        "items": len(items),
        "skipped_files": len(failed),
    }
    return Report("codec", summary, {"sample_rate": codec.sample_rate}, items, failed)


def evaluate_kl(
    *,
    reference: str | os.PathLike,
    generated: str | os.PathLike,
    classifier: metrics.Classifier,
    multilabel: bool = True,
    progress: bool = True,
) -> Report:
    """KL(p_ref || p_gen) of a local classifier's labels (PaSST: AudioSet, multi-label) on
    reference/generated pairs matched by file stem (folders or manifests)."""
    refs: dict[str, Path] = {}
    for p in list_audio(reference):
        refs.setdefault(p.stem, p)
    items, failed = [], []
    for g in tqdm(list_audio(generated), desc="kl", disable=not progress, leave=False):
        if g.stem not in refs:
            failed.append(
                {"path": str(g), "reason": "no reference of that name", "set": "generated"}
            )
            continue
        try:
            r_wav, r_sr = audio.load(refs[g.stem])
            g_wav, g_sr = audio.load(g)
        except UserError as e:
            failed.append({"path": str(g), "reason": str(e), "set": "pair"})
            continue
        kl = metrics.kl_divergence(
            classifier(r_wav, r_sr)[None], classifier(g_wav, g_sr)[None], multilabel=multilabel
        )
        items.append({"path": str(g), "reference": str(refs[g.stem]), "score": float(kl[0])})
    if not items:
        raise UserError(f"kl: no readable file in {generated} has a same-named reference")
    summary = {
        "kl": float(np.mean([r["score"] for r in items])),
        "items": len(items),
        "skipped_files": len(failed),
    }
    name = type(classifier).__name__
    details = {
        "classifier": {"name": name, "weights": getattr(classifier, "weights_digest", "none")},
        "kl": {"direction": "KL(reference || generated)", "multilabel": multilabel},
    }
    return Report("kl", summary, details, items, failed)
