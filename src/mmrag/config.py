"""One typed settings object. Nothing else in mmrag reads the environment.

Every field can be set as ``MMRAG_<FIELD>`` (for example ``MMRAG_INDEX``,
``MMRAG_MODEL``); API keys also come from their usual variables
(``OPENAI_API_KEY``, ``ANTHROPIC_API_KEY``) and never appear in reprs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import ConfigError

__all__ = ["DEFAULT_CLIP_MODEL", "DEFAULT_TEXT_MODEL", "Precision", "Settings", "TextPrecision"]

DEFAULT_CLIP_MODEL = "openai/clip-vit-base-patch32"
DEFAULT_TEXT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"

Precision = Literal["auto", "fp32", "bf16", "fp16", "int8"]
TextPrecision = Literal["auto", "fp32", "bf16", "int8"]


class Settings(BaseSettings):
    """mmrag's settings; construct with keyword arguments or from ``MMRAG_*`` variables."""

    model_config = SettingsConfigDict(env_prefix="MMRAG_", extra="ignore")

    # Where the index lives.
    index: Path = Path(".mmrag")

    # Encoders, as [BACKEND:]MODEL: a backend named in mmrag.registry (CLIP: transformers;
    # text: sentence-transformers, or openai as in "openai:text-embedding-3-small[@DIMS]").
    model: str = Field(default=DEFAULT_CLIP_MODEL, description="CLIP hub id or path; 'none'")
    text_model: str = Field(default=DEFAULT_TEXT_MODEL, description="[BACKEND:]MODEL")
    device: str = "auto"
    # auto: bf16 where the CPU runs it natively (AMX/AVX512-BF16), fp16 on CUDA, else fp32;
    # int8: dynamic quantisation of the linear layers, opt-in (CPU only).
    precision: Precision = "auto"
    # The text encoder's precision for passages and queries; same rules as precision.
    text_precision: TextPrecision = "auto"
    batch_size: int = Field(default=32, ge=1)
    # Text towers exported to ONNX (when the torch model first loads) so that later queries
    # skip importing torch; keyed by the model's files. None (MMRAG_ONNX_CACHE=none) turns it off.
    onnx_cache: Path | None = Path("~/.cache/mmrag/onnx")
    workers: int = Field(default=0, ge=0, description="decode processes; 0 = one per core")
    hf_offline: bool = Field(
        default=False, description="never contact a model hub; load from local files only"
    )

    # Late-interaction page retrieval (ColQwen2 / ColPali; see docs/pages.md): off unless a
    # model is named. Each PDF page, slide and document image gets a multi-vector.
    page_model: str | None = Field(default=None, description="[BACKEND:]MODEL; none = off")
    page_precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    page_batch_size: int = Field(default=4, ge=1)
    # Hierarchical token pooling: keep ~1/factor of each page's vectors (1 = off).
    page_pool: int = Field(default=1, ge=1, le=8)
    # A quantised first stage, rescored with exact MaxSim on rerank * k candidates.
    page_first_stage: Literal["none", "int8", "binary"] = "none"
    page_rerank: int = Field(default=8, ge=1)

    # Images.
    max_image_pixels: int = Field(default=64_000_000, ge=1)
    thumb_size: int = Field(default=256, ge=16)

    # URL fetching: safe by default.
    allow_private_urls: bool = False
    url_max_bytes: int = Field(default=25_000_000, ge=1)
    url_timeout: float = Field(default=15.0, gt=0)
    url_max_redirects: int = Field(default=5, ge=0)

    # Documents.
    ocr: bool = True
    ocr_engine: str = Field(default="rapidocr", description="a name in registry.ocr_engines")
    chunk_chars: int = Field(default=800, ge=100)
    # A document's items stay in memory until its last page (one source lands whole): 1,000
    # text pages took 60 s and 1.03 GB peak here (0.65 GB for one photo); pages past the cap
    # are skipped, and counted.
    max_pdf_pages: int = Field(default=2000, ge=1, description="pages read per PDF; more: skipped")
    doc_context: bool = Field(
        default=True, description="give items their document title and section, for search"
    )
    # Off by default: PyMuPDF's table finder runs a layout model, ~2 s per tabular page here
    # (extraction 42.7 -> 1.9 pages/s on financebench filings), against the 2x-faster target.
    tables: bool = Field(default=False, description="index PDF tables as items of their own")

    # Retrieval.
    min_score: float | None = None

    # Answering.
    answer_model: str | None = None
    openai_base_url: str | None = None
    openai_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("MMRAG_OPENAI_API_KEY", "OPENAI_API_KEY")
    )
    anthropic_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("MMRAG_ANTHROPIC_API_KEY", "ANTHROPIC_API_KEY"),
    )
    answer_timeout: float = Field(default=60.0, gt=0)
    answer_retries: int = Field(default=2, ge=0)
    image_budget: int = Field(default=512 * 512, ge=64 * 64, description="pixels per source image")
    image_detail: Literal["low", "high", "auto"] = "low"

    # Serving: with a key set, every route but /api/health needs it in the X-API-Key header.
    api_key: SecretStr | None = None

    # Store, by URL: "lance" (LanceDB under INDEX/store, the default), "lance:PATH",
    # "qdrant://HOST:PORT/COLLECTION", "qdrant+https://...", "qdrant+local:PATH[#COLLECTION]".
    # The older store="qdrant" with qdrant_url (and qdrant_collection) still works.
    store: str = Field(default="lance", description="a store URL; see mmrag.stores.url")
    qdrant_url: str | None = Field(default=None, description="http(s) URL, or a local path")
    qdrant_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("MMRAG_QDRANT_API_KEY", "QDRANT_API_KEY", "qdrant_api_key"),
    )
    qdrant_collection: str = "mmrag"

    @field_validator("page_model", mode="before")
    @classmethod
    def _page_off(cls, value: object) -> object:
        """'', 'none' and 'off' mean no page model."""
        if isinstance(value, str) and value.strip().lower() in ("", "none", "off", "false"):
            return None
        return value

    @field_validator("onnx_cache", mode="before")
    @classmethod
    def _off_words(cls, value: object) -> object:
        """'', 'none', 'off' and 'false' turn the ONNX cache off."""
        if isinstance(value, str) and value.strip().lower() in ("", "none", "off", "false"):
            return None
        return value

    def store_url(self) -> str:
        """``store`` as a URL: the older ``store="qdrant"`` + ``qdrant_url`` form translated."""
        if self.store.strip() != "qdrant":
            return self.store
        if not self.qdrant_url:
            raise ConfigError("store 'qdrant' needs MMRAG_QDRANT_URL (a URL or a local path)")
        parts = urlsplit(self.qdrant_url)
        if parts.scheme not in ("http", "https"):
            return f"qdrant+local:{self.qdrant_url}#{self.qdrant_collection}"
        if parts.path.strip("/"):
            raise ConfigError(
                "MMRAG_QDRANT_URL must be a server address without a path; "
                "or set MMRAG_STORE=qdrant://HOST:PORT/COLLECTION"
            )
        scheme = "qdrant+https" if parts.scheme == "https" else "qdrant"
        return f"{scheme}://{parts.netloc}/{self.qdrant_collection}"
