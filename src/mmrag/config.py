"""One typed settings object. Nothing else in mmrag reads the environment.

Every field can be set as ``MMRAG_<FIELD>`` (for example ``MMRAG_INDEX``,
``MMRAG_MODEL``); API keys also come from their usual variables
(``OPENAI_API_KEY``, ``ANTHROPIC_API_KEY``) and never appear in reprs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["DEFAULT_CLIP_MODEL", "DEFAULT_TEXT_MODEL", "Precision", "Settings"]

DEFAULT_CLIP_MODEL = "openai/clip-vit-base-patch32"
DEFAULT_TEXT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"

Precision = Literal["auto", "fp32", "bf16", "fp16"]


class Settings(BaseSettings):
    """mmrag's settings; construct with keyword arguments or from ``MMRAG_*`` variables."""

    model_config = SettingsConfigDict(env_prefix="MMRAG_", extra="ignore")

    # Where the index lives.
    index: Path = Path(".mmrag")

    # Encoders.
    model: str = DEFAULT_CLIP_MODEL
    text_model: str = DEFAULT_TEXT_MODEL
    device: str = "auto"
    precision: Precision = "auto"
    batch_size: int = Field(default=32, ge=1)
    workers: int = Field(default=0, ge=0, description="decode processes; 0 = one per core")
    hf_offline: bool = Field(
        default=False, description="never contact a model hub; load from local files only"
    )

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

    # Store: LanceDB on disk (default) or a Qdrant cluster.
    store: Literal["lance", "qdrant"] = "lance"
    qdrant_url: str | None = Field(default=None, description="http(s) URL, or a local path")
    qdrant_api_key: SecretStr | None = None
    qdrant_collection: str = "mmrag"
