"""One registry seam for every role: stores, encoders, OCR engines, ingesters, answerers, rerankers.

Implementations are named by ``"module:attribute"`` strings (the attribute may be dotted, as
in ``"mmrag.stores.lance:LanceStore.from_url"``), so naming a backend imports nothing and
choosing one imports only it. ``app.open_index`` is the one place that builds from these::

    from mmrag import registry
    registry.stores.names()                  # ['lance', 'qdrant', 'qdrant+local']
    factory = registry.text_encoders.load("sentence-transformers")
    registry.rerankers.register("mine", "my_pkg.rerank:MyReranker")   # a plug-in
    registry.text_encoders.register("fake", FakeEncoder)  # tests: text_model="fake:tiny"
    registry.text_encoders.split("openai:text-embedding-3-small")  # ('openai', 'text-emb...')

Encoders are chosen by ``[BACKEND:]MODEL`` specs; a registry's ``default`` is the backend a
spec without a known prefix means. What each role's factory takes is documented where it is
registered below; ``app`` calls them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from .errors import ConfigError, DependencyError

__all__ = [
    "Registry",
    "answerers",
    "image_text_encoders",
    "ingesters",
    "ocr_engines",
    "page_encoders",
    "rerankers",
    "stores",
    "text_encoders",
]

T = TypeVar("T")
Target = str | Callable[..., Any]


class Registry(Generic[T]):
    """Names -> factories for one role; a factory is a callable or a ``"module:attr"`` path."""

    def __init__(self, role: str, *, default: str | None = None) -> None:
        self.role = role
        #: The name a spec without ``NAME:`` means (see :meth:`split`).
        self.default = default
        self._targets: dict[str, Target] = {}
        self._extras: dict[str, str] = {}

    def register(self, name: str, target: Target, *, extra: str | None = None) -> None:
        """Add (or replace) ``name``; ``extra`` is the pip extra that installs its dependencies."""
        self._targets[name] = target
        if extra is not None:
            self._extras[name] = extra

    def unregister(self, name: str) -> None:
        """Remove ``name`` (a test's stand-in, a plug-in); an unknown name is ignored."""
        self._targets.pop(name, None)
        self._extras.pop(name, None)

    def names(self) -> list[str]:
        """Registered names, in registration order."""
        return list(self._targets)

    def __contains__(self, name: object) -> bool:
        return name in self._targets

    def load(self, name: str) -> Callable[..., T]:
        """The factory registered as ``name``, imported on first use."""
        target = self._targets.get(name)
        if target is None:
            raise ConfigError(f"unknown {self.role} {name!r}; choose from {self.names()}")
        if callable(target):
            return target
        module_name, _, attr = target.partition(":")
        try:
            found: Any = importlib.import_module(module_name)
        except ImportError as exc:
            extra = self._extras.get(name)
            if extra is None:
                raise
            raise DependencyError(
                exc.name or module_name, extra, f"The {self.role} {name!r}"
            ) from exc
        for part in attr.split("."):
            found = getattr(found, part)
        self._targets[name] = found
        return found  # type: ignore[no-any-return]

    def create(self, name: str, *args: Any, **kwargs: Any) -> T:
        """Build the implementation registered as ``name``."""
        return self.load(name)(*args, **kwargs)

    def split(self, spec: str) -> tuple[str, str]:
        """A ``[NAME:]MODEL`` spec as (name, model); a prefix naming nothing here is part of
        the model (a Windows path, a hub id with a colon) and the name is the default."""
        name, sep, model = spec.strip().partition(":")
        if sep and model and name in self._targets:
            return name, model
        if self.default is None:
            raise ConfigError(f"{spec!r} names no {self.role}; choose from {self.names()}")
        return self.default, spec.strip()

    def canonical(self, spec: str) -> str:
        """The spec as an index records it: without the default name, so older records match."""
        name, model = self.split(spec)
        return model if name == self.default else f"{name}:{model}"


#: Vector stores by URL scheme; ``from_url(url: StoreURL, spaces, *, overwrite, settings)``.
stores: Registry[Any] = Registry("store")
stores.register("lance", "mmrag.stores.lance:LanceStore.from_url")
stores.register("qdrant", "mmrag.stores.qdrant:QdrantStore.from_url", extra="qdrant")
stores.register("qdrant+local", "mmrag.stores.qdrant:QdrantStore.from_url", extra="qdrant")

#: CLIP-family encoders by backend; ``factory(model, settings)``.
image_text_encoders: Registry[Any] = Registry("image-text encoder", default="transformers")
image_text_encoders.register("transformers", "mmrag.models.clip:ClipEncoder.from_settings")

#: Text embedders by backend (``text_model`` is ``[BACKEND:]MODEL``); ``factory(model, settings)``.
text_encoders: Registry[Any] = Registry("text encoder", default="sentence-transformers")
text_encoders.register(
    "sentence-transformers", "mmrag.models.text:SentenceTextEncoder.from_settings"
)
text_encoders.register(
    "openai", "mmrag.models.openai_embed:OpenAITextEncoder.from_settings", extra="openai"
)

#: Late-interaction page encoders (``page_model`` is ``[BACKEND:]MODEL``); ``factory(model,
#: settings)``. ``transformers`` reads the family from the checkpoint's config.json.
page_encoders: Registry[Any] = Registry("page encoder", default="transformers")
page_encoders.register("transformers", "mmrag.models.pages:PageEncoderModel.from_settings")
page_encoders.register("colqwen2", "mmrag.models.pages:colqwen2")
page_encoders.register("colpali", "mmrag.models.pages:colpali")

#: OCR engines by name; ``factory(threads: int | None)``. Built inside decode workers too.
ocr_engines: Registry[Any] = Registry("OCR engine")
ocr_engines.register("rapidocr", "mmrag.models.ocr:RapidOcr", extra="ocr")

#: Source ingesters by name; ``factory()``; each says which suffixes it takes.
ingesters: Registry[Any] = Registry("ingester")
ingesters.register("image", "mmrag.ingest.images:ImageIngester")
ingesters.register("pdf", "mmrag.ingest.pdf:PdfIngester", extra="pdf")
ingesters.register("pptx", "mmrag.ingest.pptx:PptxIngester", extra="pptx")
ingesters.register("catalog", "mmrag.ingest.catalog:CatalogIngester")

#: Answer clients by provider; ``factory(settings, model, base_url)``.
answerers: Registry[Any] = Registry("answer provider")
answerers.register("extractive", "mmrag.answer.extractive:ExtractiveAnswerer.from_spec")
answerers.register(
    "openai", "mmrag.answer.openai_chat:OpenAIChatAnswerer.from_spec", extra="openai"
)
answerers.register(
    "anthropic", "mmrag.answer.anthropic_messages:AnthropicAnswerer.from_spec", extra="anthropic"
)

#: Second-stage rerankers by name; ``factory(settings)``.
rerankers: Registry[Any] = Registry("reranker")
