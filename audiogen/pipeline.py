"""MusicGenerator: codec + conditioned LM, the public Python API for generation.

A generator directory holds ``codec/`` (``Codec.save``) and ``lm/`` (``MusicGenModel.save``;
an imported text encoder may sit inside it, referenced by a relative path)::

    gen = MusicGenerator.load("path/to/model")
    gen.set_generation_params(duration=8, cfg_coef=3.0)
    wav = gen.generate(["a slow Irish air on fiddle"])       # [B, C, T] at gen.sample_rate
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from audiogen.errors import UserError
from audiogen.musicgen import MelodySpec, ModelSpec, MusicGenModel, TextSpec

if TYPE_CHECKING:
    from audiogen.lm import Conditions

Melody = str | os.PathLike | torch.Tensor | np.ndarray
ASSETS = Path(__file__).resolve().parent / "assets"


@dataclass
class GenerationParams:
    """Sampling settings. duration and extend_stride in seconds; top_p > 0 overrides top_k.
    melody_cfg_coef: a guidance scale of its own for the melody (a third CFG branch, the
    caption without the melody: 1.5x the rows per decode step); None = the melody shares
    cfg_coef. tempo_cfg_coef: the same for the beat clock of models with one, when the
    prompt states a tempo (one more branch, the caption without its clock); None = the
    clock shares cfg_coef."""

    duration: float = 10.0
    top_k: int = 250
    top_p: float = 0.0
    temperature: float = 1.0
    cfg_coef: float = 3.0
    melody_cfg_coef: float | None = None
    tempo_cfg_coef: float | None = None
    use_sampling: bool = True
    extend_stride: float | None = None


GENERATION_FILE = "generation.json"


def validate_params(params: GenerationParams, where: str = "") -> GenerationParams:
    """``params`` if every value is usable, else a UserError (prefixed with ``where``)."""
    if params.duration <= 0:
        raise UserError(f"{where}duration must be > 0, got {params.duration}")
    for name in ("cfg_coef", "melody_cfg_coef", "tempo_cfg_coef", "temperature", "top_p"):
        v = getattr(params, name)
        if v is not None and (isinstance(v, bool) or not isinstance(v, numbers.Real)):
            raise UserError(f"{where}{name} must be a number, got {v!r}")
        if v is not None and not math.isfinite(v):
            raise UserError(f"{where}{name} must be a finite number, got {v}")
    k = params.top_k
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 0:
        raise UserError(f"{where}top_k must be a whole number >= 0, got {k!r}")
    return params


def params_from(values: dict, where: str = "") -> GenerationParams:
    """GenerationParams from a dict of its fields, checked; a UserError (prefixed with
    ``where``) for an unknown field or an unusable value."""
    try:
        params = GenerationParams(**values)
    except TypeError as e:
        raise UserError(f"{where}unknown generation setting ({e})") from None
    return validate_params(params, where)


def load_generation_params(root: Path) -> GenerationParams:
    """The sampling defaults a generator directory ships in ``generation.json`` (any of
    :class:`GenerationParams`' fields), or the library's defaults when it has none."""
    path = root / GENERATION_FILE
    if not path.is_file():
        return GenerationParams()
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"{path}: not readable JSON ({e})") from None
    if not isinstance(values, dict):
        raise UserError(f"{path}: expected a JSON object of generation settings")
    return params_from(values, f"{path}: ")


def save_generation_params(root: Path, params: GenerationParams) -> None:
    """Write the settings that differ from the library's defaults to ``generation.json``
    (none: no file)."""
    base = dataclasses.asdict(GenerationParams())
    changed = {k: v for k, v in dataclasses.asdict(params).items() if base[k] != v}
    path = root / GENERATION_FILE
    if not changed:
        path.unlink(missing_ok=True)
        return
    from audiogen.fileio import atomic_write_text

    atomic_write_text(path, json.dumps(changed, indent=2) + "\n")


def cpu_has_native_bf16() -> bool:
    """True when the CPU has bf16 dot-product instructions (AVX512-BF16 or AMX-BF16)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as f:
            flags = set(f.read().split())
    except OSError:  # not Linux: no way to tell cheaply, keep fp32
        return False
    return bool(flags & {"avx512_bf16", "amx_bf16"})


PRECISIONS = {
    "fp32": "fp32",
    "float32": "fp32",
    "bf16": "bf16",
    "bfloat16": "bf16",
    "fp16": "fp16",
    "float16": "fp16",
    "int8": "int8",
}


def default_precision(device: torch.device) -> str:
    """The LM's generation precision, ``"bf16"``, ``"fp16"`` or ``"int8"`` (the codec and
    text encoders stay fp32).

    bf16 on CUDA and on CPUs with native bf16 (AVX512-BF16 / AMX). On other CPUs a decode
    step is bound by reading the weights, so the LM gets fp16 weights where torch has fbgemm
    (x86), int8 weights elsewhere (:mod:`audiogen.lm.quant`; fp32 activations, norms,
    attention and cache in both). Measured on a 2-core AVX2 EPYC (README, Benchmarks),
    MusicGen-small's decoder at batch 1: fp16 weights 43-65 ms per step, int8 68-74, bf16
    55-74, fp32 90 (bf16 and fp32 through audiogen's compiled few-row products); over 50
    greedy frames fp16 weights give the fp32 tokens (mean logit error 3e-4), int8 and bf16
    93.5% of them.
    ``dtype="fp32"`` gives the reference output. A rule on CPU features, not a timing at
    load, so a seed gives the same output on every run.
    """
    if device.type == "cuda" or (device.type == "cpu" and cpu_has_native_bf16()):
        return "bf16"
    if device.type != "cpu":
        return "fp32"
    from audiogen.lm.quant import fp16_weights_available

    return "fp16" if fp16_weights_available() else "int8"


def resolve_precision(dtype: torch.dtype | str | None, device: torch.device) -> str:
    """``None`` (the default rule), a torch dtype or a name -> ``"fp32" | "bf16" | "fp16" |
    "int8"``. fp16 (fp16 weights, fp32 activations) is a CPU format."""
    if dtype is None:
        return default_precision(device)
    if isinstance(dtype, torch.dtype):
        name = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}.get(dtype)
    else:
        name = PRECISIONS.get(str(dtype).lower())
    if name is None:
        raise UserError(f"unknown LM precision {dtype!r} (choose fp32, bf16, fp16 or int8)")
    if name == "fp16":
        from audiogen.lm.quant import fp16_weights_available

        if device.type != "cpu":
            raise UserError(f"fp16 weights are a CPU format; on {device.type} use bf16 or fp32")
        if not fp16_weights_available():
            raise UserError("fp16 weights need torch's fbgemm kernels (x86); use int8 or fp32")
    return name


class MusicGenerator:
    """Text- (and melody-) conditioned music generation with a codec and a conditioned LM."""

    def __init__(
        self,
        *,
        model: MusicGenModel,
        codec: torch.nn.Module,
        device: torch.device | str | None = None,
        dtype: torch.dtype | str | None = None,
    ) -> None:
        """dtype: the LM's precision, ``torch.float32`` / ``"fp32"``, ``torch.bfloat16`` /
        ``"bf16"``, ``torch.float16`` / ``"fp16"`` (fp16 weights, fp32 activations; CPU),
        ``"int8"`` (int8 weights, fp32 activations), or None for :func:`default_precision`."""
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.precision = resolve_precision(dtype, self.device)
        self.dtype = torch.bfloat16 if self.precision == "bf16" else torch.float32
        self.model = model.eval().to(self.device)
        self.model.lm.to(self.dtype)
        from audiogen.lm.quant import LOW_PRECISION_LINEARS, quantize_lm

        # The LM that decodes: the model's own, or a low-precision copy sharing its other
        # tensors (self.model keeps its float weights, so it can still be saved).
        self.decode_lm = self.model.lm
        if self.precision in LOW_PRECISION_LINEARS:
            self.decode_lm = quantize_lm(self.model.lm, self.precision, inplace=False)
        prepare = getattr(codec, "prepare_for_inference", None)  # folds weight norm: faster
        self.codec = (prepare() if prepare else codec.eval()).to(self.device)
        if model.spec.lm.num_codebooks != codec.num_codebooks:
            raise UserError(
                f"LM expects {model.spec.lm.num_codebooks} codebooks, codec gives "
                f"{codec.num_codebooks}"
            )
        self.params = GenerationParams()

    # -- construction -------------------------------------------------------------------

    @classmethod
    def load(
        cls,
        directory: str | os.PathLike = "tiny",
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | str | None = None,
    ) -> MusicGenerator:
        """Load a generator directory (``codec/`` + ``lm/``); ``"tiny"`` is the bundled model."""
        from audiogen.codecs import Codec

        root = ASSETS / "tiny" if str(directory) == "tiny" else Path(directory)
        if str(directory) == "tiny" and not root.is_dir():
            raise UserError(
                "this install has no bundled tiny model yet; pass --model DIR (a generator "
                "directory, e.g. from `audiogen import musicgen`)"
            )
        for sub in ("codec", "lm"):
            if not (root / sub).is_dir():
                raise UserError(f"{root}: not a generator directory (no {sub}/ inside)")
        params = load_generation_params(root)
        codec = Codec.load(root / "codec")
        model = MusicGenModel.load(root / "lm")
        gen = cls(model=model, codec=codec, device=device, dtype=dtype)
        gen.params = params
        return gen

    @classmethod
    def from_hf(
        cls,
        directory: str | os.PathLike,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | str | None = None,
    ) -> MusicGenerator:
        """A HF transformers MusicGen / MusicGen-melody directory (all local)."""
        model, codec = import_hf_musicgen(directory)
        return cls(model=model, codec=codec, device=device, dtype=dtype)

    def save(self, directory: str | os.PathLike) -> Path:
        """Write a generator directory (codec/ + lm/, an imported text encoder inside lm/,
        and generation.json with the sampling settings that differ from the defaults)."""
        out = Path(directory)
        self.codec.save(out / "codec")
        model = self.model
        text = model.text
        if text is not None and model.spec.text.encoder in ("t5", "hf"):
            enc_dir = out / "lm" / "text_encoder"
            text.encoder.save_pretrained(enc_dir, safe_serialization=True)
            text.tokenizer.save_pretrained(enc_dir)
            model.spec = replace(model.spec, text=replace(model.spec.text, path="text_encoder"))
        model.save(out / "lm")
        save_generation_params(out, self.params)
        return out

    # -- generation ---------------------------------------------------------------------

    @property
    def sample_rate(self) -> int:
        return self.codec.sample_rate

    @property
    def frame_rate(self) -> float:
        return self.codec.frame_rate

    def set_generation_params(self, **kwargs) -> None:
        """Set any of duration, top_k, top_p, temperature, cfg_coef, melody_cfg_coef,
        tempo_cfg_coef, use_sampling, extend_stride."""
        try:
            params = replace(self.params, **kwargs)
        except TypeError as e:
            raise UserError(f"unknown generation parameter ({e})") from None
        self.params = validate_params(params)  # only once every value is valid

    def generate(
        self, prompts: Sequence[str | None], *, seed: int | None = None, progress: bool = False
    ) -> torch.Tensor:
        """Audio ``[B, C, T]`` (float32, CPU) for each text prompt (None = unconditional)."""
        return self._decode(self.generate_codes(prompts, seed=seed, progress=progress))

    def generate_with_melody(
        self,
        prompts: Sequence[str | None],
        melody: Melody | Sequence[Melody],
        *,
        melody_sample_rate: int | None = None,
        seed: int | None = None,
        progress: bool = False,
    ) -> torch.Tensor:
        """Generate following a melody: a path to audio or MIDI, or audio ``[C, T]`` with its
        sample rate; one melody for all prompts or one per prompt."""
        if self.model.melody is None:
            raise UserError("this model has no melody conditioning")
        prompts = list(prompts)
        many = isinstance(melody, list | tuple)
        mels = list(melody) if many else [melody] * len(prompts)
        if len(mels) != len(prompts):
            raise UserError(f"{len(mels)} melodies for {len(prompts)} prompts")
        chromas = [self.melody_chroma(m, melody_sample_rate) for m in mels]
        codes = self.generate_codes(prompts, chromas=chromas, seed=seed, progress=progress)
        return self._decode(codes)

    def generate_continuation(
        self,
        audio: torch.Tensor | Sequence[torch.Tensor],
        sample_rate: int,
        prompts: Sequence[str | None],
        *,
        seed: int | None = None,
        progress: bool = False,
    ) -> torch.Tensor:
        """Continue ``audio``: ``[C, T]`` (one prompt for every text), ``[B, C, T]``, or a
        list of ``[C, T_b]`` of different lengths. Each row of the output starts with its
        own prompt audio and all rows have the generation duration (a shorter prompt gets
        more new audio)."""
        from audiogen.audio import convert_channels, resample

        def prepare(w: torch.Tensor) -> torch.Tensor:
            w = w if w.dim() == 3 else w[None]
            w = resample(w.float(), sample_rate, self.sample_rate)
            return convert_channels(w, self.codec.channels).to(self.device)

        lengths = None
        with torch.inference_mode():
            if isinstance(audio, torch.Tensor):
                wav = prepare(audio)
                if wav.shape[0] == 1 and len(prompts) > 1:
                    wav = wav.expand(len(prompts), -1, -1)
                prompt_codes = self.codec.encode(wav)
            else:
                if len(audio) != len(prompts):
                    raise UserError(f"{len(audio)} audio prompts for {len(prompts)} texts")
                each = [self.codec.encode(prepare(w))[0] for w in audio]  # [K, F_b]
                fmax = max(c.shape[-1] for c in each)
                prompt_codes = torch.stack(
                    [torch.nn.functional.pad(c, (0, fmax - c.shape[-1])) for c in each]
                )
                lengths = [c.shape[-1] for c in each]
        codes = self.generate_codes(
            prompts,
            prompt_codes=prompt_codes,
            prompt_lengths=lengths,
            seed=seed,
            progress=progress,
        )
        return self._decode(codes)

    def melody_chroma(self, melody: Melody, sample_rate: int | None = None) -> torch.Tensor:
        """Chroma [F, 12] of a melody, cut or padded to the generation duration when the
        model uses exact-length chroma (MusicGen-melody tiles instead)."""
        from audiogen.audio import convert_channels, resample
        from audiogen.conditioners.melody import load_melody_chroma, null_chroma

        ext = self.model.melody.extractor
        if isinstance(melody, str | os.PathLike):
            chroma = load_melody_chroma(melody, ext, duration=self.params.duration)
        else:
            wav = torch.as_tensor(melody, dtype=torch.float32)
            wav = wav[None] if wav.dim() == 1 else wav
            if sample_rate is None:
                raise UserError("a melody given as audio needs melody_sample_rate")
            wav = convert_channels(resample(wav, sample_rate, ext.sample_rate), 1)
            chroma = ext(wav[:, : int(self.params.duration * ext.sample_rate)])[0]
        if self.model.spec.melody.chroma_length is None:
            frames = max(1, math.ceil(self.params.duration * ext.frame_rate))
            if chroma.shape[0] < frames:
                chroma = torch.cat([chroma, null_chroma(frames - chroma.shape[0])])
            chroma = chroma[:frames]
        return chroma

    @torch.inference_mode()
    def _decode(self, codes: torch.Tensor) -> torch.Tensor:
        return self.codec.decode(codes.to(self.device)).float().cpu()

    @torch.inference_mode()
    def branch_conditions(
        self,
        texts: Sequence[str | None],
        chromas: Sequence[torch.Tensor | None] | None,
        num_frames: int,
    ) -> tuple[Conditions, Conditions | None, list[Conditions], list[float]]:
        """The conditions of each guidance branch for ``num_frames`` frames: the request's
        own; the null one (None without CFG); and the partial branches between them, most
        conditioned first, with their scales (see :func:`audiogen.lm.generate`): the caption
        and clock without the melody, when the melody has a guidance scale of its own; then
        the caption without its clock, when the clock has one."""
        p = self.params
        model = self.model
        text_tok, mel_tok = model.tokenize(texts, chromas)
        # The prompt's tempo as a beat clock (models with one), from the first frame.
        tempo_tok = model.tokenize_tempo(texts, model.spec.lm.pattern().seq_len(num_frames))
        # The caption is encoded once: the guidance branches below reuse it.
        text_out = None if text_tok is None else model.text(text_tok.to(model.device))
        cond = model.encode(text_tok, mel_tok, tempo_tok, text_out=text_out)
        if p.cfg_coef == 1.0:
            return cond, None, [], []
        null = model.encode(
            null_text(text_tok),
            null_melody(mel_tok),
            None if tempo_tok is None else tempo_tok.null(),
        )
        partials, coefs = [], []

        def own_scale(coef: float | None, tokens) -> bool:
            # equal to cfg_coef: plain CFG, at its cost
            return (
                coef is not None
                and coef != p.cfg_coef
                and tokens is not None
                and bool(tokens.present.any())
            )

        # Each partial branch drops one more condition: the melody first, then the clock.
        kept_mel = mel_tok
        if own_scale(p.melody_cfg_coef, mel_tok):
            kept_mel = null_melody(mel_tok)
            partials.append(model.encode(text_tok, kept_mel, tempo_tok, text_out=text_out))
            coefs.append(p.melody_cfg_coef)
        if own_scale(p.tempo_cfg_coef, tempo_tok):
            partials.append(model.encode(text_tok, kept_mel, tempo_tok.null(), text_out=text_out))
            coefs.append(p.tempo_cfg_coef)
        return cond, null, partials, coefs

    def generate_codes(
        self,
        prompts: Sequence[str | None],
        *,
        chromas: Sequence[torch.Tensor | None] | None = None,
        prompt_codes: torch.Tensor | None = None,
        prompt_lengths: Sequence[int] | None = None,
        seed: int | None = None,
        progress: bool = False,
    ) -> torch.Tensor:
        """Codec tokens ``[B, K, F]`` (prompt frames included) before decoding.

        chromas: per-prompt chroma [F, 12] (see :meth:`melody_chroma`) or None;
        prompt_codes: ``[B, K, Fp]`` codes to continue; prompt_lengths: each row's prompt
        frames when they differ (left-aligned, the rest of the row is padding).
        """
        from audiogen.lm import SamplingParams, generate

        texts = list(prompts)
        p = self.params
        model = self.model
        num_frames = max(1, int(round(p.duration * self.frame_rate)))
        if prompt_codes is not None:
            num_frames = max(num_frames, prompt_codes.shape[-1] + 1)
        cond, null, partials, coefs = self.branch_conditions(texts, chromas, num_frames)
        # The context the positions allow: prefix + start token + frames + the pattern delay.
        prefix = 0 if cond.prefix is None else cond.prefix.shape[1]
        capacity = model.spec.lm.max_positions - prefix - model.spec.lm.num_codebooks - 1
        if capacity < 1:
            raise UserError(f"the melody/text prefix ({prefix}) leaves no room for audio")
        window = min(num_frames, capacity)
        stride = None if p.extend_stride is None else int(p.extend_stride * self.frame_rate)
        generator = None
        if seed is not None:
            generator = torch.Generator(self.device).manual_seed(int(seed))
        out = generate(
            self.decode_lm,
            num_frames=num_frames,
            cond=cond,
            null_cond=null,
            cfg_coef=p.cfg_coef,
            partial_cond=partials or None,
            partial_coef=coefs or None,
            prompt=prompt_codes,
            prompt_lengths=prompt_lengths,
            batch_size=len(texts),
            params=SamplingParams(
                top_k=p.top_k, top_p=p.top_p, temperature=p.temperature, use_sampling=p.use_sampling
            ),
            generator=generator,
            window=window,
            extend_stride=stride,
            progress=progress,
        )
        return out.codes


def null_text(text_tok):
    """The CFG null caption with the shapes of ``text_tok``: fully masked (its embeddings
    become zero), as HF MusicGen builds its null inputs. None stays None."""
    from audiogen.conditioners.text import TextTokens

    if text_tok is None:
        return None
    return TextTokens(
        text_tok.input_ids,
        torch.zeros_like(text_tok.attention_mask),
        torch.zeros_like(text_tok.present),
    )


def null_melody(mel_tok):
    """The CFG null melody with the shapes of ``mel_tok``: the null chroma, nothing present."""
    from audiogen.conditioners.melody import MelodyTokens, null_chroma

    if mel_tok is None:
        return None
    b, f, c = mel_tok.chroma.shape
    chroma = null_chroma(f, c).to(mel_tok.chroma).expand(b, f, c)
    return MelodyTokens(chroma, mel_tok.mask, torch.zeros_like(mel_tok.present))


def assemble_generator(
    codec_dir: str | os.PathLike,
    lm_dir: str | os.PathLike,
    out: str | os.PathLike,
    generation: dict | None = None,
) -> Path:
    """Write a generator directory (``codec/`` + ``lm/``) from trained checkpoints, with
    ``generation`` (GenerationParams fields) as its sampling defaults (``generation.json``).

    The LM's codec facts (sample rate, frame rate, codebooks, cardinality) must match the
    codec's, or the tokens it was trained on came from another codec.
    """
    from audiogen.codecs import Codec
    from audiogen.data.tokens import TokenMeta

    codec = Codec.load(codec_dir)
    model = MusicGenModel.load(lm_dir)
    bad = model.spec.codec_mismatches(dataclasses.asdict(TokenMeta.of(codec)))
    if bad:
        diffs = ", ".join(f"{where.rsplit('.', 1)[-1]} {v} vs {c}" for where, v, c in bad)
        raise UserError(f"{lm_dir}: LM expects another codec than {codec_dir} ({diffs})")
    params = params_from(generation or {})
    root = Path(out)
    codec.save(root / "codec")
    model.save(root / "lm")
    save_generation_params(root, params)
    return root


def import_hf_musicgen(directory: str | os.PathLike) -> tuple[MusicGenModel, torch.nn.Module]:
    """Build audiogen's model and codec from a HF MusicGen(-melody) directory, offline."""
    from transformers import AutoTokenizer, EncodecConfig, EncodecModel, T5Config, T5EncoderModel
    from transformers.utils import logging as hf_logging

    from audiogen.codecs.convert import from_hf_encodec
    from audiogen.conditioners import MelodyConditioner, TextConditioner
    from audiogen.conditioners.melody import ChromaExtractor
    from audiogen.lm import from_hf_musicgen
    from audiogen.lm.convert import read_safetensors

    hf_logging.disable_progress_bar()
    root = Path(directory)
    imported = from_hf_musicgen(root)  # checks the directory, config and decoder weights
    cfg = imported.hf_config
    for part in ("text_encoder", "audio_encoder"):
        if part not in cfg:
            raise UserError(f"{root / 'config.json'}: no '{part}' section (a full MusicGen needed)")

    def sub_state(prefix: str) -> dict[str, torch.Tensor]:
        sd = read_safetensors(root, lambda n: n.startswith(prefix))
        return {k[len(prefix) :]: v for k, v in sd.items()}

    enc = EncodecModel(EncodecConfig.from_dict(cfg["audio_encoder"]))
    enc.load_state_dict(sub_state("audio_encoder."), strict=True)
    codec = from_hf_encodec(enc.eval())
    # MusicGen decodes with as many codebooks as its decoder has, whatever the codec's
    # default bandwidth; pick the bandwidth that gives exactly that many.
    k = imported.config.num_codebooks
    codec.bandwidth = k * codec.quantizer.bandwidth_per_quantizer(codec.frame_rate) * (1 + 1e-9)
    if codec.num_codebooks != k:
        raise UserError(
            f"{root}: the decoder has {k} codebooks, the codec only {codec.num_codebooks}"
        )

    t5 = T5EncoderModel(T5Config.from_dict(cfg["text_encoder"]))
    missing, unexpected = t5.load_state_dict(sub_state("text_encoder."), strict=False)
    if unexpected or [k for k in missing if "embed_tokens" not in k]:  # tied to shared.weight
        raise UserError(f"{root}: text encoder weights do not match its config")
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(root), local_files_only=True)
    except (OSError, ValueError) as e:
        raise UserError(f"{root}: no usable tokenizer files ({str(e).splitlines()[0]})") from None
    dim = imported.config.dim
    text = TextConditioner(
        encoder=t5.eval(),
        tokenizer=tokenizer,
        encoder_dim=t5.config.d_model,
        output_dim=dim,
        max_length=512,
        name="t5",
    )
    if imported.text_proj is not None:
        text.proj.load_state_dict(imported.text_proj)
    melody = None
    melody_spec = MelodySpec()
    melodic = imported.kind == "musicgen_melody"
    if melodic:
        pre = _read_json(root / "preprocessor_config.json")
        n_fft, hop = int(pre.get("n_fft", 16384)), int(pre.get("hop_length", 4096))
        sr = int(pre.get("sampling_rate", codec.sample_rate))
        ext = ChromaExtractor(sample_rate=sr, n_fft=n_fft, hop_length=hop)
        chroma_length = int(cfg.get("chroma_length", 235))
        melody = MelodyConditioner(extractor=ext, output_dim=dim, chroma_length=chroma_length)
        melody.proj.load_state_dict(imported.audio_proj)
        melody_spec = MelodySpec(
            enabled=True, chroma_rate=sr / hop, n_fft=n_fft, chroma_length=chroma_length
        )
    spec = ModelSpec(
        lm=imported.config,
        text=TextSpec(
            encoder="t5", path=str(root), max_length=512, fuse="prepend" if melodic else "cross"
        ),
        melody=melody_spec,
        sample_rate=codec.sample_rate,
        frame_rate=codec.frame_rate,
    )
    model = MusicGenModel(spec=spec, lm=imported.lm, text=text, melody=melody)
    return model, codec


def _read_json(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: invalid JSON ({e})") from None
