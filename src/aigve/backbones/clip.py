"""``clip``: per-frame CLIP image embeddings (transformers CLIP, PickScore, OpenCLIP), plus the text side.

One extractor serves ``clipsim``, ``cliptemp`` and ``pickscore``. Its ``extract`` returns the *projected*
image embeddings (``visual_projection(pooled)`` for transformers, ``encode_image`` for OpenCLIP) as float32
``[T, D]``, **not** L2-normalised: metrics normalise (in float64) where a cosine is needed, and PickScore's
``logit_scale`` needs nothing else. Because ``clipsim`` and ``cliptemp`` ask for the same extractor, options
and sampler, the engine runs one image forward pass per frame for both.

Prompts are scored by the ``clip_text`` scorer: it reads the ``clip`` extractor's image embeddings of the
sampled frames (the engine computes them once for every metric) and the entry's prompt, encodes the prompt
with the *same loaded model* (the engine hands it the built extractor), each distinct prompt once per model,
and returns per frame the cosine, ``exp(logit_scale) * cosine`` and whether the prompt was truncated.

Models (``model`` option; registry names of :mod:`aigve.weights`, or their hub ids):

========================  ===========  =====================================================================
name                      backend      files
========================  ===========  =====================================================================
``clip_vit_b32``          transformers ``openai/clip-vit-base-patch32`` snapshot (the original AIGVE model)
``clip_vit_l14``          transformers ``openai/clip-vit-large-patch14`` snapshot
``pickscore_v1``          transformers ``yuvalkirstain/PickScore_v1`` snapshot + the processor (image
                                       preprocessing and tokenizer) of ``laion/CLIP-ViT-H-14-laion2B-s32B-b79K``
``clip_vit_h14_laion2b``  open_clip    ``ViT-H-14`` with ``open_clip_pytorch_model.bin`` (registry file)
``open_clip:<ARCH>``      open_clip    any built-in OpenCLIP architecture; ``weights=`` the checkpoint file
========================  ===========  =====================================================================

transformers models are read from a snapshot directory with ``local_files_only=True``:
``<cache>/weights/hf/<repo>@<revision>/`` (see :func:`hf_snapshot_dir`; fill it with :func:`fetch_snapshot`)
or the directory given as ``weights=`` (a local directory with the same files works). The registry's
checkpoint file inside it is hash-checked against the registry (a mismatch is an error in the cache and a
warning for an explicit directory). An OpenCLIP ``weights=`` may also be a directory holding
``open_clip_config.json`` and the checkpoint (OpenCLIP's ``local-dir:`` layout).

Preprocessing is the model's own processor: ``CLIPImageProcessor`` from the snapshot's saved config (resize
the shorter side, bicubic, centre crop, CLIP mean/std) on the uint8 frames, with the PIL backend by default
(``image_backend="pil"``, the published CLIP preprocessing; ``"torchvision"`` is transformers 5's faster
default and differs by ~1e-2 in pixel values); OpenCLIP models use OpenCLIP's own eval transform on PIL images.

Long prompts are truncated to the text encoder's context (77 tokens for CLIP) keeping the end-of-text token
(``truncation=True, max_length=context``, as the PickScore model card does); ``encode_text`` says which
prompts were truncated so the metric can record it per video.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch

from aigve.backbones.base import Extractor, ScorerInput, SharedModelScorer
from aigve.backbones.registry import register_extractor
from aigve.errors import MissingDependencyError, UsageError, WeightsError
from aigve.weights import WeightSpec, cache_dir, cached_sha256, get_weight_spec

log = logging.getLogger(__name__)

EXTRACTOR_NAME = "clip"
DEFAULT_MODEL = "clip_vit_b32"
ImageBackend = Literal["pil", "torchvision", "vbench", "vbench_pil"]
IMAGE_BACKENDS: tuple[str, ...] = ("pil", "torchvision", "vbench", "vbench_pil")

HF_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
HF_PROCESSOR_FILES = ("preprocessor_config.json", "processor_config.json")
HF_TOKENIZER_FILES = ("tokenizer.json", "vocab.json")


@dataclass(frozen=True)
class ClipModelSpec:
    """How to build one selectable CLIP-family model."""

    name: str
    backend: Literal["hf", "open_clip"]
    weights: str | None  # weights-registry name of the checkpoint
    processor: str | None = None  # registry name whose HF snapshot holds the processor (else: the model's)
    arch: str | None = None  # OpenCLIP architecture
    metric: str = "clipsim"  # for `aigve weights fetch <metric>` hints


MODELS: dict[str, ClipModelSpec] = {
    "clip_vit_b32": ClipModelSpec("clip_vit_b32", "hf", "clip_vit_b32"),
    "clip_vit_l14": ClipModelSpec("clip_vit_l14", "hf", "clip_vit_l14"),
    "pickscore_v1": ClipModelSpec(
        "pickscore_v1", "hf", "pickscore_v1", processor="clip_vit_h14_laion2b", metric="pickscore"
    ),
    "clip_vit_h14_laion2b": ClipModelSpec(
        "clip_vit_h14_laion2b", "open_clip", "clip_vit_h14_laion2b", arch="ViT-H-14"
    ),
}
ALIASES: dict[str, str] = {
    "openai/clip-vit-base-patch32": "clip_vit_b32",
    "openai/clip-vit-large-patch14": "clip_vit_l14",
    "yuvalkirstain/PickScore_v1": "pickscore_v1",
    "laion/CLIP-ViT-H-14-laion2B-s32B-b79K": "clip_vit_h14_laion2b",
}


def model_spec(model: str) -> ClipModelSpec:
    """The :class:`ClipModelSpec` for a model name, hub id alias or ``open_clip:<ARCH>``."""
    name = ALIASES.get(model, model)
    if name in MODELS:
        return MODELS[name]
    if name.startswith("open_clip:") and len(name) > len("open_clip:"):
        return ClipModelSpec(name, "open_clip", None, arch=name.split(":", 1)[1])
    known = ", ".join([*MODELS, *ALIASES, "open_clip:<ARCH>"])
    raise UsageError(f"unknown CLIP model '{model}'; known: {known}")


# --------------------------------------------------------------------------------------------
# Hugging Face snapshot directories (shared with the BLIP backbone)
# --------------------------------------------------------------------------------------------
def hf_snapshot_dir(spec: WeightSpec) -> Path:
    """``<cache>/weights/hf/<repo>@<revision>/``: where a pinned transformers snapshot is looked for."""
    if not spec.hf_repo or not spec.revision:
        raise WeightsError(f"weights '{spec.name}' have no hf_repo/revision in the registry")
    return cache_dir() / "hf" / f"{spec.hf_repo}@{spec.revision}"


def registry_file_name(spec: WeightSpec) -> str:
    """The checkpoint's file name inside the hub repository (last path part of its URL)."""
    return spec.urls[0].rsplit("/", 1)[-1] if spec.urls else spec.filename


def _missing_files(d: Path, groups: Sequence[Sequence[str]]) -> list[str]:
    """Groups of alternatives: a group is satisfied when any of its files exists in ``d``."""
    return [" or ".join(g) for g in groups if not any((d / f).is_file() for f in g)]


@dataclass(frozen=True)
class ResolvedDir:
    """A snapshot directory ready for ``from_pretrained`` plus what the provenance needs."""

    path: Path
    sha256: str | None
    warnings: tuple[str, ...] = ()


def resolve_hf_dir(
    weights_name: str,
    explicit: str | os.PathLike[str] | None,
    groups: Sequence[Sequence[str]],
    metric: str,
    *,
    check_weights: bool = True,
) -> ResolvedDir:
    """Find the snapshot directory of ``weights_name`` (explicit dir first, then the cache) and check it.

    ``groups`` lists the files needed (each group: alternatives). With ``check_weights`` the registry's
    checkpoint file, when present, is compared with the registry's sha256: a mismatch is an error in the
    cache and a warning for an explicit directory; another weight format (e.g. ``model.safetensors``) in an
    explicit directory is used as given with a warning. Raises ``WeightsError`` naming the files and the fix.
    """
    spec = get_weight_spec(weights_name)
    fetch_hint = f"`aigve weights fetch {metric}`"
    if explicit is not None:
        d = Path(explicit).expanduser()
        if not d.is_dir():
            raise WeightsError(
                f"{d}: not a directory; {metric} needs a transformers snapshot directory of "
                f"{spec.hf_repo} with {', '.join(' or '.join(g) for g in groups)} "
                f"(pass --metric-option {metric}.weights=DIR)"
            )
        where, source = d, "explicit"
    else:
        where, source = hf_snapshot_dir(spec), "cache"
    missing = _missing_files(where, groups) if where.is_dir() else [" or ".join(g) for g in groups]
    if missing:
        if source == "explicit":
            raise WeightsError(
                f"{where}: missing {', '.join(missing)} for {metric} ({spec.hf_repo}); "
                f"give a directory with the model's files (save_pretrained layout)"
            )
        raise WeightsError(
            f"{where}: the {spec.hf_repo} snapshot (revision {spec.revision}) is not present "
            f"(missing {', '.join(missing)}). Run {fetch_hint} while online, or download the repository at "
            f"that revision elsewhere (huggingface-cli download {spec.hf_repo} --revision {spec.revision} "
            f"--local-dir DIR) and copy it to {where}, or pass --metric-option {metric}.weights=DIR"
        )
    if not check_weights:
        return ResolvedDir(where, None)
    warnings: list[str] = []
    reg_file = where / registry_file_name(spec)
    if reg_file.is_file():
        sha = cached_sha256(reg_file)
        if spec.hash_kind == "sha256" and spec.hash_value and sha != spec.hash_value.lower():
            msg = f"{reg_file}: sha256 {sha} differs from the registry's {spec.hash_value} ({spec.name})"
            if source == "cache":
                raise WeightsError(f"{msg}; delete {where} and run {fetch_hint} again")
            warnings.append(f"{msg}; used as given")
        elif not spec.pinned:
            warnings.append(
                f"{reg_file}: {spec.name} has no published hash; sha256 {sha} recorded in the provenance only"
            )
        return ResolvedDir(where, sha, tuple(warnings))
    found = next((where / f for f in HF_WEIGHT_FILES if (where / f).is_file()), None)
    sha = cached_sha256(found) if found is not None else cached_sha256(where)
    warnings.append(
        f"{where}: no {registry_file_name(spec)} (the registry's file for {spec.name}); "
        f"{found.name if found else 'the directory'} used as given, sha256 {sha} not checked"
    )
    return ResolvedDir(where, sha, tuple(warnings))


def fetch_snapshot(weights_name: str, allow_patterns: Sequence[str] | None = None) -> Path:
    """Download the pinned hub snapshot of ``weights_name`` into :func:`hf_snapshot_dir` (needs network).

    Uses ``huggingface_hub.snapshot_download(repo, revision=<pinned>)``; the registry's checkpoint is then
    hash-checked by :func:`resolve_hf_dir`. For the CLI's ``aigve weights fetch <metric>``.
    """
    spec = get_weight_spec(weights_name)
    dest = hf_snapshot_dir(spec)
    try:
        from huggingface_hub import snapshot_download
    except ImportError as e:  # pragma: no cover - transformers depends on huggingface_hub
        raise MissingDependencyError("downloading hub snapshots", "vlsim", "huggingface_hub") from e
    # tokenizer.model: SentencePiece tokenizers (VideoPhy's LLaMA) are not JSON
    default = ["*.json", "*.txt", "tokenizer.model", registry_file_name(spec)]
    patterns = list(allow_patterns) if allow_patterns else default
    assert spec.hf_repo is not None  # hf_snapshot_dir checked it
    dest.mkdir(parents=True, exist_ok=True)
    snapshot_download(  # pragma: no cover - network
        repo_id=spec.hf_repo, revision=spec.revision, local_dir=str(dest), allow_patterns=patterns
    )
    check = registry_file_name(spec) in patterns
    resolve_hf_dir(weights_name, None, [], spec.metric_hint, check_weights=check)  # hash check
    return dest


def snapshot_patterns(model: str) -> dict[str, list[str]]:
    """Registry names -> file patterns to fetch for a CLIP-family model (for :func:`fetch_snapshot`)."""
    ms = model_spec(model)
    out: dict[str, list[str]] = {}
    if ms.backend == "hf" and ms.weights:
        spec = get_weight_spec(ms.weights)
        out[ms.weights] = ["*.json", "*.txt", registry_file_name(spec)]
    if ms.processor:
        out[ms.processor] = ["*.json", "*.txt"]
    return out


def import_transformers() -> Any:
    try:
        import transformers
    except ImportError as e:
        raise MissingDependencyError("vision-language metrics", "vlsim", "transformers") from e
    return transformers


def _pooled(out: Any) -> torch.Tensor:
    """``get_*_features`` returns a tensor in transformers 4 and a ModelOutput in transformers 5."""
    return out if isinstance(out, torch.Tensor) else out.pooler_output


# --------------------------------------------------------------------------------------------
# loaded models
# --------------------------------------------------------------------------------------------
class ClipModel:
    """A loaded CLIP-family model: image and text embeddings, logit scale, prompt cache."""

    def __init__(
        self,
        backend: str,
        model: Any,
        device: torch.device,
        *,
        processor: Any = None,
        preprocess: Any = None,
        tokenizer: Any = None,
        context_length: int = 77,
        image_backend: str = "pil",
        image_size: int = 224,
    ) -> None:
        self.backend = backend
        self.model = model
        self.device = device
        self.processor = processor
        self.preprocess = preprocess
        self.tokenizer = tokenizer
        self.context_length = int(context_length)
        #: "vbench": VBench's ``clip_transform`` on float tensors (:mod:`aigve.vbench.transforms`) instead of
        #: the model's own processor
        self.image_backend = image_backend
        self.image_size = int(image_size)
        self._text_cache: dict[str, tuple[np.ndarray, bool]] = {}
        self._lock = threading.Lock()

    @property
    def logit_scale(self) -> float:
        """``exp(logit_scale)`` of the checkpoint (100 for OpenAI CLIP; PickScore's own value)."""
        return float(self.model.logit_scale.detach().exp().item())

    @torch.inference_mode()
    def encode_images(self, frames: np.ndarray) -> np.ndarray:
        """uint8 ``[N, H, W, 3]`` -> float32 ``[N, D]`` projected (unnormalised) image embeddings."""
        if self.image_backend in ("vbench", "vbench_pil"):
            from aigve.vbench.transforms import clip_transform, clip_transform_image

            fn = clip_transform if self.image_backend == "vbench" else clip_transform_image
            pix = fn(frames, self.image_size).to(self.device)
            if self.backend == "hf":
                out = _pooled(self.model.get_image_features(pixel_values=pix))
            else:
                out = self.model.encode_image(pix)
        elif self.backend == "hf":
            pix = self.processor(images=list(frames), return_tensors="pt")["pixel_values"]
            out = _pooled(self.model.get_image_features(pixel_values=pix.to(self.device)))
        else:
            from PIL import Image

            pix = torch.stack([self.preprocess(Image.fromarray(f)) for f in frames])
            out = self.model.encode_image(pix.to(self.device))
        return out.float().cpu().numpy()

    def _token_count(self, text: str) -> int:
        """Tokens of ``text`` including start/end tokens, without truncation."""
        if self.backend == "hf":
            return len(self.tokenizer(text, truncation=False)["input_ids"])
        enc = getattr(self.tokenizer, "encode", None)
        if enc is None:  # pragma: no cover - HF-tokenizer OpenCLIP models
            return 0
        return len(enc(text)) + 2

    @torch.inference_mode()
    def _encode_one(self, text: str) -> np.ndarray:
        if self.backend == "hf":
            tok = self.tokenizer(
                [text], truncation=True, max_length=self.context_length, padding=True, return_tensors="pt"
            )
            out = _pooled(
                self.model.get_text_features(
                    input_ids=tok["input_ids"].to(self.device),
                    attention_mask=tok["attention_mask"].to(self.device),
                )
            )
        else:
            ids = self.tokenizer([text])
            out = self.model.encode_text(ids.to(self.device))
        return out[0].float().cpu().numpy()

    def encode_text(self, texts: Sequence[str]) -> tuple[np.ndarray, list[bool]]:
        """Prompts -> (float32 ``[N, D]`` projected text embeddings, truncated flags). Cached per prompt."""
        rows, flags = [], []
        for t in texts:
            with self._lock:
                hit = self._text_cache.get(t)
            if hit is None:
                hit = (self._encode_one(t), self._token_count(t) > self.context_length)
                with self._lock:
                    self._text_cache[t] = hit
            rows.append(hit[0])
            flags.append(hit[1])
        return np.stack(rows), flags


def load_clip_model(
    model: str = DEFAULT_MODEL,
    weights: str | os.PathLike[str] | None = None,
    processor: str | os.PathLike[str] | None = None,
    device: str | torch.device = "cpu",
    image_backend: ImageBackend = "pil",
) -> tuple[ClipModel, str | None, list[str]]:
    """Build a CLIP-family model from local files only. Returns ``(model, weights_sha256, warnings)``."""
    from aigve.device import resolve_device

    ms = model_spec(model)
    dev = resolve_device(device)
    if image_backend not in IMAGE_BACKENDS:
        raise UsageError(f"image_backend must be one of {IMAGE_BACKENDS}, got '{image_backend}'")
    if ms.backend == "hf":
        handle, sha, warnings = _load_hf(
            ms, weights, processor, dev, "pil" if image_backend.startswith("vbench") else image_backend
        )
        handle.image_size = int(handle.model.config.vision_config.image_size)
    else:
        handle, sha, warnings = _load_open_clip(ms, weights, dev)
        size = getattr(handle.model.visual, "image_size", 224)
        handle.image_size = int(size[0] if isinstance(size, tuple | list) else size)
    handle.image_backend = image_backend
    return handle, sha, warnings


def _load_hf(
    ms: ClipModelSpec,
    weights: str | os.PathLike[str] | None,
    processor: str | os.PathLike[str] | None,
    dev: torch.device,
    image_backend: str,
) -> tuple[ClipModel, str | None, list[str]]:
    tf = import_transformers()
    assert ms.weights is not None
    own_proc = ms.processor is None and processor is None
    groups: list[tuple[str, ...]] = [("config.json",), HF_WEIGHT_FILES]
    if own_proc:
        groups += [HF_PROCESSOR_FILES, HF_TOKENIZER_FILES]
    rd = resolve_hf_dir(ms.weights, weights, groups, ms.metric)
    warnings = list(rd.warnings)
    if own_proc:
        proc_dir = rd.path
    else:
        proc_groups = [HF_PROCESSOR_FILES, HF_TOKENIZER_FILES]
        proc_dir = resolve_hf_dir(
            ms.processor or ms.weights, processor, proc_groups, ms.metric, check_weights=False
        ).path
    try:
        proc = tf.CLIPProcessor.from_pretrained(str(proc_dir), local_files_only=True, backend=image_backend)
        net = tf.CLIPModel.from_pretrained(str(rd.path), local_files_only=True)
    except (OSError, ValueError) as e:
        raise WeightsError(
            f"{rd.path}: cannot load {ms.name} with transformers ({type(e).__name__}: {e}); "
            f"check the directory's files or run `aigve weights fetch {ms.metric}` again"
        ) from e
    net = net.to(dev).eval()
    ctx = int(net.config.text_config.max_position_embeddings)
    handle = ClipModel("hf", net, dev, processor=proc, tokenizer=proc.tokenizer, context_length=ctx)
    return handle, rd.sha256, warnings


def _load_open_clip(
    ms: ClipModelSpec, weights: str | os.PathLike[str] | None, dev: torch.device
) -> tuple[ClipModel, str | None, list[str]]:
    try:
        import open_clip
    except ImportError as e:
        raise MissingDependencyError(f"CLIP model '{ms.name}'", "vlsim", "open_clip") from e
    from aigve.weights import resolve_weights

    warnings: list[str] = []
    if weights is not None and Path(weights).is_dir():
        d = Path(weights).expanduser()
        if not (d / "open_clip_config.json").is_file():
            raise WeightsError(
                f"{d}: an OpenCLIP directory needs open_clip_config.json and the checkpoint "
                f"(open_clip_pytorch_model.bin or open_clip_model.safetensors)"
            )
        name, pretrained = f"local-dir:{d}", None
        ckpt = next((p for p in sorted(d.iterdir()) if p.suffix in (".bin", ".safetensors", ".pth")), None)
        sha = cached_sha256(ckpt) if ckpt else None
    elif ms.weights is not None:
        r = resolve_weights(ms.weights, explicit_path=weights, download=False)
        warnings += r.warnings
        name, pretrained, sha = str(ms.arch), str(r.path), r.sha256
    else:
        if weights is None:
            raise WeightsError(
                f"CLIP model '{ms.name}' has no registry checkpoint: pass the OpenCLIP checkpoint file with "
                f"--metric-option clipsim.weights=PATH"
            )
        p = Path(weights).expanduser()
        if not p.is_file():
            raise WeightsError(
                f"{p}: OpenCLIP checkpoint not found; fix --metric-option clipsim.weights=PATH"
            )
        name, pretrained, sha = str(ms.arch), str(p), cached_sha256(p)
    try:
        net, _, preprocess = open_clip.create_model_and_transforms(
            name, pretrained=pretrained, device=dev, load_weights=True
        )
        tokenizer = open_clip.get_tokenizer(name)
    except RuntimeError as e:
        raise WeightsError(f"{weights or pretrained}: cannot load OpenCLIP '{name}' ({e})") from e
    net.eval()
    ctx = int(getattr(tokenizer, "context_length", 77))
    handle = ClipModel("open_clip", net, dev, preprocess=preprocess, tokenizer=tokenizer, context_length=ctx)
    return handle, sha, warnings


# --------------------------------------------------------------------------------------------
# the extractor
# --------------------------------------------------------------------------------------------
def normalize_rows(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """L2-normalise the rows of ``[N, D]`` in float64 (a zero row stays zero)."""
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), eps)


def image_text_cosine(image_emb: np.ndarray, text_emb: np.ndarray) -> np.ndarray:
    """``[T, D]`` image embeddings and one ``[D]`` text embedding -> ``[T]`` float64 cosines."""
    return normalize_rows(image_emb) @ normalize_rows(np.asarray(text_emb).reshape(1, -1))[0]


@register_extractor
class ClipExtractor(Extractor):
    """Per-frame projected CLIP image embeddings ``[T, D]`` (float32, not normalised).

    Options: ``model`` (see :data:`MODELS`), ``weights`` (snapshot directory or OpenCLIP checkpoint),
    ``processor`` (a processor directory, for models whose processor lives elsewhere, e.g. PickScore),
    ``image_backend`` (``"pil"`` default, ``"torchvision"``, or ``"vbench"``: VBench's ``clip_transform`` —
    bicubic resize of the float frames without antialiasing, centre crop, CLIP mean/std — for the VBench
    dimensions; a metric with the same model, frames and ``image_backend="vbench"`` shares their forward pass),
    or ``"vbench_pil"``: VBench's ``clip_transform_Image`` (PIL bicubic resize, centre crop), for appearance_style.
    """

    name: ClassVar[str] = EXTRACTOR_NAME
    #: the default ViT-B/32's 224 px (class-level: a 336-px CLIP model is judged against 224 too)
    input_side: ClassVar[int | None] = 224
    kind: ClassVar[Literal["frames"]] = "frames"
    version: ClassVar[str] = "1"
    known_options: ClassVar[tuple[str, ...] | None] = ("model", "weights", "processor", "image_backend")
    extra: ClassVar[str | None] = "vlsim"

    def __init__(
        self, device: str | torch.device | None = "cpu", batch_size: int = 32, **options: Any
    ) -> None:
        options.setdefault("model", DEFAULT_MODEL)
        model_spec(str(options["model"]))  # fail early on a bad name
        super().__init__(device, batch_size, **options)
        self.model: ClipModel | None = None

    def _load_network(self) -> tuple[ClipModel, str | None]:
        handle, sha, warnings = load_clip_model(
            str(self.options["model"]),
            weights=self.options.get("weights"),
            processor=self.options.get("processor"),
            device=self.device,
            image_backend=self.options.get("image_backend", "pil"),
        )
        for w in warnings:
            log.warning("%s", w)
        return handle, sha

    @property
    def handle(self) -> ClipModel:
        self.ensure_loaded()
        assert self.model is not None
        return self.model

    def extract(self, frames: np.ndarray, fps: float | None = None) -> np.ndarray:
        """uint8 ``[T, H, W, 3]`` -> float32 ``[T, D]`` projected image embeddings (not normalised)."""
        h = self.handle
        return self.batched(np.asarray(frames), h.encode_images)


CLIP_TEXT_COLUMNS = ("cosine", "scaled_cosine", "truncated")


@register_extractor
class ClipTextScorer(SharedModelScorer):
    """Image-text scores of the sampled frames with the entry's prompt, per frame ``[T, 3]`` float64:
    ``cosine`` = cos(image, text), ``scaled_cosine`` = ``exp(logit_scale) * cosine`` (PickScore's score),
    ``truncated`` = 1 when the prompt was longer than the text context and was truncated (same in every row).

    Reads the ``clip`` extractor's embeddings (same options) and encodes the prompt with that extractor's
    loaded model. Options: as the ``clip`` extractor.
    """

    name: ClassVar[str] = "clip_text"
    input_side: ClassVar[int | None] = 224  # reads frames through its CLIP extractor
    version: ClassVar[str] = "1"
    extra: ClassVar[str | None] = "vlsim"
    texts: ClassVar[tuple[str, ...]] = ("prompt",)
    columns: ClassVar[tuple[str, ...]] = CLIP_TEXT_COLUMNS
    extractor_class: ClassVar[type[Extractor]] = ClipExtractor
    known_options: ClassVar[tuple[str, ...] | None] = ClipExtractor.known_options

    def __init__(
        self, device: str | torch.device | None = "cpu", batch_size: int = 32, **options: Any
    ) -> None:
        options.setdefault("model", DEFAULT_MODEL)
        super().__init__(device, batch_size, **options)

    @property
    def handle(self) -> ClipModel:
        return super().handle

    def score(self, items: Sequence[ScorerInput]) -> list[np.ndarray]:
        if not items:
            return []
        h = self.handle
        txt, trunc = h.encode_text([it.texts["prompt"] for it in items])
        scale = h.logit_scale
        out = []
        for i, it in enumerate(items):
            cos = image_text_cosine(it.data, txt[i])
            out.append(np.stack([cos, scale * cos, np.full_like(cos, float(trunc[i]))], axis=1))
        return out
