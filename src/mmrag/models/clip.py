"""CLIP image/text encoder on Hugging Face ``transformers``.

Example::

    encoder = ClipEncoder("openai/clip-vit-base-patch32")   # cheap: nothing loaded yet
    vectors = encoder.encode_texts(["a red bicycle"])        # loads weights on first use
    encoder.release()                                        # frees them again

Preprocessing is split from encoding so it can run in worker processes:
``preprocess_image`` / ``load_for_model`` are plain module-level functions that
import neither torch nor transformers, and pickling a ``ClipEncoder`` ships its
settings, never its weights. torch and transformers are imported on first use.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np
from PIL import Image, ImageOps

from mmrag.errors import ConfigError, InputError, ModelLoadError
from mmrag.imaging import preprocess_image
from mmrag.models import precision as _prec
from mmrag.models.hub import hub_reachable, looks_like_path, resolve_device
from mmrag.models.onnx_text import OnnxTextTower, export_clip_text, model_key
from mmrag.models.precision import PRECISIONS as _PRECISIONS
from mmrag.models.precision import call_threads, cpu_supports_bf16, torch_dtype, torch_threads

if TYPE_CHECKING:
    from mmrag.config import Settings

__all__ = [
    "CLIP_MEAN",
    "CLIP_STD",
    "ClipEncoder",
    "cpu_supports_bf16",
    "load_for_model",
    "preprocess_image",
]

#: OpenAI CLIP's normalisation, used when a checkpoint has no preprocessor_config.json.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

_log = logging.getLogger(__name__)
_CPU = ("auto", "cpu")
_LOCAL_HINT = (
    "To use a local copy, download the checkpoint where a network is available "
    "(e.g. `hf download <id> --local-dir DIR`) and pass --model /path/to/dir "
    "or set MMRAG_MODEL=/path/to/dir."
)


# --------------------------------------------------------------------------- preprocessing


def load_for_model(source: str | os.PathLike[str] | IO[bytes], size: int) -> np.ndarray:
    """Open an image file, apply its EXIF orientation and preprocess it to (size, size, 3) uint8.

    Raises ``InputError`` naming the source when the file cannot be read as an image.
    """
    name = str(getattr(source, "name", source))
    try:
        with Image.open(source) as image:
            if image.format == "JPEG" and image.mode in ("RGB", "L", "YCbCr"):
                image.draft("RGB", (size, size))  # before anything decodes the pixels
            oriented = ImageOps.exif_transpose(image)
            return preprocess_image(oriented, size, draft=False)
    except (OSError, ValueError, Image.DecompressionBombError, SyntaxError) as exc:
        raise InputError(name, f"cannot read image: {exc}") from exc


# --------------------------------------------------------------------------- device & precision


# --------------------------------------------------------------------------- checkpoint files


@dataclass(frozen=True)
class _Meta:
    """What we need to know about a checkpoint before (or without) loading its weights."""

    dim: int
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


def _read_json(model: str, filename: str, *, local_dir: Path | None, network: bool) -> Any:
    """A JSON file of the checkpoint from its directory or the hub cache (or the hub), else None."""
    if local_dir is not None:
        path = local_dir / filename
    else:
        from huggingface_hub import hf_hub_download, try_to_load_from_cache

        cached = try_to_load_from_cache(model, filename)
        if isinstance(cached, str):
            path = Path(cached)
        elif not network:
            return None
        else:
            try:
                path = Path(hf_hub_download(model, filename))
            except Exception:
                return None  # an optional file: absent and unreachable mean the same here
    try:
        return json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None


def _meta_from_files(model: str, *, local_dir: Path | None, network: bool) -> _Meta | None:
    """Read dim, image size and normalisation from config files; None if config.json is absent."""
    config = _read_json(model, "config.json", local_dir=local_dir, network=network)
    if not isinstance(config, dict):
        return None
    vision = config.get("vision_config") or {}
    proc = _read_json(model, "preprocessor_config.json", local_dir=local_dir, network=network)
    proc = proc if isinstance(proc, dict) else {}
    return _Meta(
        dim=int(config.get("projection_dim", 512)),
        image_size=int(vision.get("image_size", 224)),
        mean=tuple(proc.get("image_mean", CLIP_MEAN)),  # type: ignore[arg-type]
        std=tuple(proc.get("image_std", CLIP_STD)),  # type: ignore[arg-type]
    )


# --------------------------------------------------------------------------- encoder


class ClipEncoder:
    """CLIP images and texts into one L2-normalised float32 space (``ImageTextEncoder``).

    The constructor only records settings; weights load on first encode and
    ``release()`` frees them. ``dim`` and ``image_size`` come from the checkpoint's
    config.json (local directory or hub cache) without loading weights, and only
    load the model when no config file is at hand. Each encode call sizes torch's
    intra-op threads itself (one for a query, the free cores for a batch:
    ``precision.call_threads``); ``num_threads`` caps that, to leave cores to decoding
    workers. ``precision="int8"`` quantises the linear layers dynamically (CPU only).
    """

    def __init__(
        self,
        model_id_or_path: str,
        device: str = "auto",
        precision: str = "auto",
        batch_size: int = 32,
        offline: bool = False,
        *,
        num_threads: int | None = None,
        onnx_cache: Path | None = None,
    ) -> None:
        if precision not in _PRECISIONS:
            raise ConfigError(f"precision must be one of {_PRECISIONS}, got {precision!r}")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        self.model_id = model_id_or_path
        self.batch_size = batch_size
        self.offline = offline
        self.num_threads = num_threads
        self.onnx_cache = onnx_cache.expanduser() if onnx_cache else None
        self._onnx: OnnxTextTower | None = None
        self._device_setting = device
        self._precision_setting = precision
        self._device: str | None = None
        self._precision: str | None = None
        self._meta: _Meta | None = None
        self._model: Any = None
        self._tokenizer: Any = None
        self._max_text_len = 77
        self._lock = threading.RLock()

    @classmethod
    def from_settings(cls, model: str, settings: Settings) -> ClipEncoder:
        """The encoder for ``model`` with the device, precision and batch size of ``settings``."""
        return cls(
            model,
            device=settings.device,
            precision=settings.precision,
            batch_size=settings.batch_size,
            offline=settings.hf_offline,
            onnx_cache=settings.onnx_cache,
        )

    def __repr__(self) -> str:
        return f"ClipEncoder({self.model_id!r}, loaded={self.loaded})"

    # Pickling ships settings (and the cheap metadata), never the weights: workers only preprocess.
    def __getstate__(self) -> dict[str, Any]:
        if self._meta is None:
            self._meta = self._meta_without_loading()
        state = dict(self.__dict__)
        state.update(_model=None, _tokenizer=None, _lock=None, _onnx=None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ settings resolved lazily

    @property
    def loaded(self) -> bool:
        """Whether the weights are in memory."""
        return self._model is not None

    @property
    def device(self) -> str:
        """The torch device used ('auto' resolved)."""
        if self._device is None:
            self._device = resolve_device(self._device_setting)
        return self._device

    @property
    def precision(self) -> str:
        """The precision actually used: 'fp32', 'bf16', 'fp16' or 'int8' ('auto' resolved)."""
        if self._precision is None:
            self._precision = _prec.resolve_precision(self._precision_setting, self.device)
        return self._precision

    @property
    def dim(self) -> int:
        """Embedding size (config.json's projection_dim)."""
        return self._get_meta().dim

    @property
    def image_size(self) -> int:
        """Side of the square input image in pixels."""
        return self._get_meta().image_size

    def _local_dir(self) -> Path | None:
        """The checkpoint directory when the model is given as a path, else None (a hub id)."""
        if not looks_like_path(self.model_id):
            return None
        path = Path(self.model_id).expanduser().resolve()
        if not path.is_dir():
            raise ModelLoadError(
                f"CLIP model directory {str(path)!r} (from {self.model_id!r}) does not exist "
                f"or is not a directory. {_LOCAL_HINT}"
            )
        return path

    def _meta_without_loading(self) -> _Meta | None:
        return _meta_from_files(self.model_id, local_dir=self._local_dir(), network=False)

    def _get_meta(self) -> _Meta:
        if self._meta is None:
            self._meta = self._meta_without_loading()
        if self._meta is None:
            self._load()  # a hub model that is not cached yet: fetching it tells us
        assert self._meta is not None
        return self._meta

    # ------------------------------------------------------------------ loading

    def _load(self) -> None:
        """Load weights and tokenizer once; ModelLoadError says what was tried."""
        with _prec.load_lock, self._lock:
            if self._model is not None:
                return
            from transformers import AutoTokenizer, CLIPModel

            local_dir = self._local_dir()
            source = str(local_dir) if local_dir else self.model_id
            dtype = torch_dtype(self.precision)
            try:
                local_only = self._local_only(local_dir)
                model = CLIPModel.from_pretrained(source, dtype=dtype, local_files_only=local_only)
                tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local_only)
            except (OSError, ValueError, KeyError, RuntimeError) as exc:
                raise ModelLoadError(self._load_failure(local_dir, exc)) from exc
            model = model.to(self.device).eval()  # type: ignore[arg-type]
            if self.precision == "int8":
                model = _prec.quantize_int8(model)
            meta = _meta_from_files(
                self.model_id, local_dir=local_dir, network=not self._local_only(local_dir)
            )
            self._meta = meta or _Meta(
                dim=int(model.config.projection_dim),
                image_size=int(model.config.vision_config.image_size),
                mean=CLIP_MEAN,
                std=CLIP_STD,
            )
            limits = [model.config.text_config.max_position_embeddings]
            if 0 < tokenizer.model_max_length < 100_000:  # huge sentinel means "unset"
                limits.append(tokenizer.model_max_length)
            self._max_text_len = min(limits)
            self._tokenizer = tokenizer
            self._model = model
            self._export_onnx(local_dir)

    def _onnx_target(self, local_dir: Path | None) -> Path | None:
        """Where the ONNX text tower of a local checkpoint lives; None for hub ids or GPUs."""
        if self.onnx_cache is None or local_dir is None or self._device_setting not in _CPU:
            return None
        return self.onnx_cache / model_key(local_dir, "clip")

    def _export_onnx(self, local_dir: Path | None) -> None:
        """Export the fp32 text tower for torch-free queries, once per checkpoint files."""
        target = self._onnx_target(local_dir)
        if target is None or target.exists():
            return
        try:
            export_clip_text(str(local_dir), self._max_text_len, target)
        except Exception as exc:  # an export is an optimisation: never fail the load over it
            _log.warning("ONNX export of %s skipped: %s", self.model_id, exc)

    def _query_tower(self, texts: list[str]) -> OnnxTextTower | None:
        """The exported tower for a few query texts while torch is not loaded, if any."""
        if self._model is not None or len(texts) > _prec.QUERY_BATCH:
            return None
        if self._onnx is None and (target := self._onnx_target(self._local_dir())) is not None:
            # int8 (opt-in) quantises the text tower's weights too: 4x fewer bytes per query.
            int8 = self._precision_setting == "int8"
            self._onnx = OnnxTextTower.find(target.parent, target.name, int8=int8)
        return self._onnx

    def _local_only(self, local_dir: Path | None) -> bool:
        """Load from local files only: a directory, offline mode, or no reachable hub."""
        return self.offline or local_dir is not None or not hub_reachable()

    def _load_failure(self, local_dir: Path | None, exc: Exception) -> str:
        text = str(exc).strip()
        reason = text.splitlines()[0].rstrip(".") if text else type(exc).__name__
        if local_dir is not None:
            where = f"from local directory {str(local_dir)!r}"
        elif self.offline:
            where = "from the Hugging Face hub cache only (offline mode: no download tried)"
        elif not hub_reachable():
            where = (
                "from the Hugging Face hub cache only (the hub's host does not resolve: no network)"
            )
        else:
            where = "from the Hugging Face hub (download or cache)"
        return f"could not load CLIP model {self.model_id!r} {where}: {reason}. {_LOCAL_HINT}"

    def release(self) -> None:
        """Free the weights (and GPU memory); the next encode loads them again."""
        with self._lock:
            if self._model is None:
                return
            on_cuda = self.device.startswith("cuda")
            self._model = None
            self._tokenizer = None
            gc.collect()
            if on_cuda:
                import torch

                torch.cuda.empty_cache()

    # ------------------------------------------------------------------ encoding

    def preprocess(self, image: Image.Image) -> np.ndarray:
        """PIL image -> uint8 (S, S, 3) at this model's input size; safe in worker processes."""
        return preprocess_image(image, self.image_size)

    def encode_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 (N, S, S, 3) from ``preprocess`` -> float32 (N, dim), L2-normalised."""
        size = self.image_size
        if pixels.dtype != np.uint8 or pixels.ndim != 4 or pixels.shape[1:] != (size, size, 3):
            raise InputError(
                "pixels",
                f"expected uint8 array (N, {size}, {size}, 3), got {pixels.dtype} {pixels.shape}",
            )
        if len(pixels) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        self._load()
        import torch

        meta = self._get_meta()
        dtype = torch_dtype(self.precision)
        # Fold rescale (1/255) and normalisation into one affine map on the uint8 values.
        mean = torch.tensor(meta.mean, device=self.device).view(1, 3, 1, 1) * 255.0
        scale = 1.0 / (torch.tensor(meta.std, device=self.device).view(1, 3, 1, 1) * 255.0)
        out = []
        threads = call_threads(len(pixels), limit=self.num_threads or 0)
        with torch.inference_mode(), torch_threads(threads):
            for start in range(0, len(pixels), self.batch_size):
                chunk = np.ascontiguousarray(pixels[start : start + self.batch_size])
                batch = torch.from_numpy(chunk).to(self.device).permute(0, 3, 1, 2).float()
                batch = ((batch - mean) * scale).to(dtype)
                features = self._model.get_image_features(pixel_values=batch).pooler_output
                out.append(torch.nn.functional.normalize(features.float(), dim=-1).cpu())
        return torch.cat(out).numpy()

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """PIL images -> float32 (N, dim), L2-normalised (preprocessing in this process)."""
        if not images:
            return np.zeros((0, self.dim), dtype=np.float32)
        size = self.image_size
        parts = []
        for start in range(0, len(images), self.batch_size):
            chunk = images[start : start + self.batch_size]
            parts.append(self.encode_pixels(np.stack([preprocess_image(i, size) for i in chunk])))
        return np.concatenate(parts)

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Texts -> float32 (N, dim), L2-normalised; truncated at the model's max length."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if (tower := self._query_tower(texts)) is not None:
            return tower.encode(texts)
        self._load()
        import torch

        encoded = self._tokenizer(texts, truncation=True, max_length=self._max_text_len)[
            "input_ids"
        ]
        # Batch similar lengths together and pad only to the longest of each batch: a short
        # query costs a fraction of a 77-token one, and CLIP's causal mask makes the result
        # independent of trailing padding.
        order = sorted(range(len(texts)), key=lambda i: len(encoded[i]))
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        threads = call_threads(len(texts), limit=self.num_threads or 0)
        with torch.inference_mode(), torch_threads(threads):
            for start in range(0, len(order), self.batch_size):
                idx = order[start : start + self.batch_size]
                batch = self._tokenizer.pad(
                    {"input_ids": [encoded[i] for i in idx]}, padding=True, return_tensors="pt"
                ).to(self.device)
                features = self._model.get_text_features(
                    input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
                ).pooler_output
                out[idx] = torch.nn.functional.normalize(features.float(), dim=-1).cpu().numpy()
        return out
