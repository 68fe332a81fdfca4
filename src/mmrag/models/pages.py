"""Late-interaction page encoders: ColQwen2 and ColPali on Hugging Face ``transformers``.

A page image becomes many vectors (one per image patch group and prompt token) and a
query text many more; a page's score is MaxSim (see :mod:`mmrag.stores.multivector`).
Example::

    encoder = PageEncoderModel("vidore/colqwen2-v1.0-hf")   # cheap: nothing loaded yet
    pages = encoder.encode_pages([page_image])                # [(tokens, 128) float32]
    queries = encoder.encode_queries(["revenue by region in 2023"])
    encoder.release()

Outputs are exactly the reference model's embeddings (``ColQwen2ForRetrieval`` /
``ColPaliForRetrieval``, projected and L2-normalised per token) with the padding tokens
removed, as float32 renormalised per token. torch and transformers load on first use.
"""

from __future__ import annotations

import gc
import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from mmrag.errors import ConfigError, InputError, ModelLoadError
from mmrag.models import precision as _prec

# Shared with the CLIP encoder: how a model spec is told from a path, and the hub probe.
from mmrag.models.hub import hub_reachable, looks_like_path, resolve_device

if TYPE_CHECKING:
    from mmrag.config import Settings

__all__ = ["FAMILIES", "PageEncoderModel", "colpali", "colqwen2"]

#: Model families by config ``model_type``: the transformers model class to load.
FAMILIES = {"colqwen2": "ColQwen2ForRetrieval", "colpali": "ColPaliForRetrieval"}
_PRECISIONS = ("auto", "fp32", "bf16", "fp16")
_HINT = (
    "Page models are large (ColQwen2 ~2B parameters): download one where a network is "
    "available (e.g. `hf download vidore/colqwen2-v1.0-hf --local-dir DIR`) and pass "
    "--pages DIR or set MMRAG_PAGE_MODEL=DIR."
)


class PageEncoderModel:
    """ColQwen2 / ColPali pages and queries into multi-vectors (the ``PageEncoder`` role).

    ``family`` is "colqwen2", "colpali" or None (read from the checkpoint's config.json,
    else guessed from its name). Pages go through the model ``batch_size`` at a time;
    ``precision`` "auto" is bf16 on CPUs that run it natively, fp16 on CUDA, else fp32.
    """

    def __init__(
        self,
        model_id_or_path: str,
        family: str | None = None,
        device: str = "auto",
        precision: str = "auto",
        batch_size: int = 4,
        offline: bool = False,
        *,
        num_threads: int | None = None,
    ) -> None:
        if precision not in _PRECISIONS:
            raise ConfigError(f"page precision must be one of {_PRECISIONS}, got {precision!r}")
        if family is not None and family not in FAMILIES:
            raise ConfigError(f"page model family must be one of {sorted(FAMILIES)}")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        self.model_id = model_id_or_path
        self.batch_size = batch_size
        self.offline = offline
        self.num_threads = num_threads
        self._family = family
        self._device_setting = device
        self._precision_setting = precision
        self._device: str | None = None
        self._precision: str | None = None
        self._dim: int | None = None
        self._model: Any = None
        self._processor: Any = None
        self._lock = threading.RLock()

    @classmethod
    def from_settings(
        cls, model: str, settings: Settings, family: str | None = None
    ) -> PageEncoderModel:
        """The encoder for ``model`` with the device, page precision and batch of ``settings``."""
        return cls(
            model,
            family=family,
            device=settings.device,
            precision=settings.page_precision,
            batch_size=settings.page_batch_size,
            offline=settings.hf_offline,
        )

    def __repr__(self) -> str:
        return f"PageEncoderModel({self.model_id!r}, loaded={self.loaded})"

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
        """'fp32', 'bf16' or 'fp16' ('auto' resolved for this device)."""
        if self._precision is None:
            self._precision = _prec.resolve_precision(
                self._precision_setting, self.device, allowed=_PRECISIONS
            )
        return self._precision

    @property
    def dim(self) -> int:
        """Size of each token vector (config.json's ``embedding_dim``), read without loading."""
        if self._dim is None:
            config = self._config()
            if config is None:
                self._load()
            else:
                self._dim = int(config.get("embedding_dim", 128))
        assert self._dim is not None
        return self._dim

    @property
    def family(self) -> str:
        """'colqwen2' or 'colpali'."""
        if self._family is None:
            config = self._config() or {}
            found = config.get("model_type")
            if found not in FAMILIES:
                found = "colpali" if "colpali" in self.model_id.lower() else "colqwen2"
            self._family = found
        return self._family

    # ------------------------------------------------------------------ loading

    def _local_dir(self) -> Path | None:
        if not looks_like_path(self.model_id):
            return None
        path = Path(self.model_id).expanduser().resolve()
        if not path.is_dir():
            raise ModelLoadError(
                f"page model directory {str(path)!r} (from {self.model_id!r}) does not exist "
                f"or is not a directory. {_HINT}"
            )
        return path

    def _config(self) -> dict[str, Any] | None:
        """config.json from the directory or the hub cache; None when neither has it."""
        local = self._local_dir()
        if local is not None:
            path: Path | None = local / "config.json"
        else:
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(self.model_id, "config.json")
            path = Path(cached) if isinstance(cached, str) else None
        try:
            return json.loads(path.read_text("utf-8")) if path else None
        except (OSError, ValueError):
            return None

    def _load(self) -> None:
        """Load weights and processor once; ModelLoadError says what was tried."""
        with _prec.load_lock, self._lock:
            if self._model is not None:
                return
            import transformers

            local = self._local_dir()
            source = str(local) if local else self.model_id
            local_only = self.offline or local is not None or not hub_reachable()
            model_cls = getattr(transformers, FAMILIES[self.family])
            try:
                model = model_cls.from_pretrained(
                    source, dtype=_prec.torch_dtype(self.precision), local_files_only=local_only
                )
                processor = transformers.AutoProcessor.from_pretrained(
                    source, local_files_only=local_only
                )
            except (OSError, ValueError, KeyError, RuntimeError) as exc:
                raise ModelLoadError(self._load_failure(local, local_only, exc)) from exc
            self._model = model.to(self.device).eval()
            self._processor = processor
            self._dim = int(model.config.embedding_dim)

    def _load_failure(self, local: Path | None, local_only: bool, exc: Exception) -> str:
        text = str(exc).strip()
        reason = text.splitlines()[0].rstrip(".") if text else type(exc).__name__
        if local is not None:
            where = f"from local directory {str(local)!r}"
        elif local_only:
            where = "from the Hugging Face hub cache only (offline or no network)"
        else:
            where = "from the Hugging Face hub (download or cache)"
        return f"could not load page model {self.model_id!r} {where}: {reason}. {_HINT}"

    def release(self) -> None:
        """Free the weights (and GPU memory); the next encode loads them again."""
        with self._lock:
            if self._model is None:
                return
            self._model = None
            self._processor = None
            gc.collect()
            if self.device.startswith("cuda"):
                import torch

                torch.cuda.empty_cache()

    # ------------------------------------------------------------------ encoding

    def encode_pages(self, images: Sequence[Image.Image]) -> list[np.ndarray]:
        """Page images -> one float32 ``(tokens, dim)`` array each, unit rows, no padding."""
        images = list(images)
        for i, image in enumerate(images):
            if not isinstance(image, Image.Image) or min(image.size) < 1:
                raise InputError(f"page image {i}", "not a non-empty PIL image")
        return self._encode(
            images,
            lambda chunk: self._processor.process_images([im.convert("RGB") for im in chunk]),
            # One page is hundreds of tokens through a 2B model: a batch's worth of work, not
            # a short query that call_threads gives one thread.
            work=max(len(images), _prec.QUERY_BATCH + 1),
        )

    def encode_queries(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Query texts -> one float32 ``(tokens, dim)`` array each, unit rows, no padding."""
        texts = list(texts)
        return self._encode(texts, lambda chunk: self._processor.process_queries(chunk), len(texts))

    def _encode(self, inputs: list[Any], prepare: Any, work: int) -> list[np.ndarray]:
        """Inputs through processor and model in batches; ``work`` sizes the threads."""
        if not inputs:
            return []
        self._load()
        import torch

        out: list[np.ndarray] = []
        threads = _prec.call_threads(work, limit=self.num_threads or 0)
        with torch.inference_mode(), _prec.torch_threads(threads):
            for start in range(0, len(inputs), self.batch_size):
                batch = prepare(inputs[start : start + self.batch_size])
                batch.pop("labels", None)  # training targets the processor adds for images
                batch = batch.to(self.device)
                if "pixel_values" in batch:
                    batch["pixel_values"] = batch["pixel_values"].to(self._model.dtype)
                embeddings = self._model(**batch).embeddings.float()
                mask = batch["attention_mask"].bool()
                for row, keep in zip(embeddings, mask, strict=True):
                    v = row[keep]
                    out.append(torch.nn.functional.normalize(v, dim=-1).cpu().numpy())
        return out


def colqwen2(model: str, settings: Settings) -> PageEncoderModel:
    """A ColQwen2 encoder whatever its config says (registry name ``colqwen2``)."""
    return PageEncoderModel.from_settings(model, settings, family="colqwen2")


def colpali(model: str, settings: Settings) -> PageEncoderModel:
    """A ColPali encoder whatever its config says (registry name ``colpali``)."""
    return PageEncoderModel.from_settings(model, settings, family="colpali")
