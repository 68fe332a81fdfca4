"""Build CLIP checkpoints locally for tests and benchmarks; nothing is downloaded.

No machine here can fetch pretrained CLIP weights, so tests run the real code
paths on small randomly initialised models saved with ``save_pretrained``: they
load from a directory exactly like a hub checkpoint. Example::

    path = make_tiny_clip(tmp_path / "clip")          # 32x32 images, 16-d embeddings
    encoder = ClipEncoder(str(path), precision="fp32")

    path = make_random_clip(tmp_path / "b32")         # real ViT-B/32 shapes, for speed tests
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["CLIP_ARCHS", "make_clip_tokenizer", "make_random_clip", "make_tiny_clip"]

#: File written beside a random-weight CLIP built here; `mmrag eval` reports say so when found.
RANDOM_WEIGHTS_MARKER = "MMRAG_RANDOM_WEIGHTS"

_BOS = "<|startoftext|>"
_EOS = "<|endoftext|>"

#: Real architecture sizes of OpenAI's CLIP checkpoints (from their config.json files).
CLIP_ARCHS: dict[str, dict[str, Any]] = {
    "vit-b-32": {
        "projection_dim": 512,
        "text_config": {"hidden_size": 512, "intermediate_size": 2048, "num_hidden_layers": 12,
                        "num_attention_heads": 8},
        "vision_config": {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
                          "num_attention_heads": 12, "image_size": 224, "patch_size": 32},
    },
    "vit-b-16": {
        "projection_dim": 512,
        "text_config": {"hidden_size": 512, "intermediate_size": 2048, "num_hidden_layers": 12,
                        "num_attention_heads": 8},
        "vision_config": {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
                          "num_attention_heads": 12, "image_size": 224, "patch_size": 16},
    },
    "vit-l-14": {
        "projection_dim": 768,
        "text_config": {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
                        "num_attention_heads": 12},
        "vision_config": {"hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 24,
                          "num_attention_heads": 16, "image_size": 224, "patch_size": 14},
    },
}  # fmt: skip


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible byte -> printable character table."""
    bs = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs), strict=True))


def make_clip_tokenizer(directory: str | Path, *, model_max_length: int = 77) -> Any:
    """Write a byte-level CLIP tokenizer (514 tokens, no merges) to ``directory`` and return it.

    Every byte is a token, alone or word-final (``</w>``), so any text tokenizes;
    ``<|startoftext|>`` is id 512 and ``<|endoftext|>`` (also the pad token) id 513,
    last like in the real vocabulary, so CLIP's "pool at the highest id" rule still holds.
    """
    from transformers import CLIPTokenizer

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    chars = list(_bytes_to_unicode().values())
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": i + 256 for i, c in enumerate(chars)})
    vocab[_BOS] = 512
    vocab[_EOS] = 513
    (directory / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), "utf-8")
    (directory / "merges.txt").write_text("#version: 0.2\n", "utf-8")
    tokenizer = CLIPTokenizer.from_pretrained(directory, model_max_length=model_max_length)
    tokenizer.save_pretrained(directory)  # adds tokenizer.json/tokenizer_config.json like hub repos
    return tokenizer


def _merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Shallow-merge ``overrides`` into ``base``, one level deeper for the sub-configs."""
    out = {**base}
    for key, value in overrides.items():
        if key in ("text_config", "vision_config"):
            out[key] = {**base.get(key, {}), **value}
        else:
            out[key] = value
    return out


def _save_clip(directory: str | Path, config_kwargs: dict[str, Any], seed: int) -> Path:
    """Build a randomly initialised CLIPModel and save model, tokenizer and image processor."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    special = {"vocab_size": 514, "bos_token_id": 512, "eos_token_id": 513, "pad_token_id": 513}
    kwargs = _merge({"text_config": special}, config_kwargs)
    config: Any = CLIPConfig(**kwargs)
    torch.manual_seed(seed)
    CLIPModel(config).eval().save_pretrained(directory)
    make_clip_tokenizer(directory, model_max_length=config.text_config.max_position_embeddings)
    size = config.vision_config.image_size
    processor = CLIPImageProcessorPil(
        size={"shortest_edge": size}, crop_size={"height": size, "width": size}
    )
    processor.save_pretrained(directory)
    # A marker so reports can say these weights are random (see mmrag.evaluate).
    (directory / RANDOM_WEIGHTS_MARKER).write_text("random weights, mmrag.testing\n")
    return directory


def make_tiny_clip(directory: str | Path, *, seed: int = 0, **config_overrides: Any) -> Path:
    """Save a tiny random CLIP (32x32 images, patch 8, 16-d embeddings) to ``directory``.

    ``config_overrides`` are CLIPConfig keywords; ``text_config``/``vision_config``
    dicts are merged into the tiny defaults, e.g. ``vision_config={"image_size": 48}``.
    """
    tiny = {
        "projection_dim": 16,
        "text_config": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                        "num_attention_heads": 2, "max_position_embeddings": 77},
        "vision_config": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                          "num_attention_heads": 2, "image_size": 32, "patch_size": 8},
    }  # fmt: skip
    return _save_clip(directory, _merge(tiny, config_overrides), seed)


def make_random_clip(directory: str | Path, arch: str = "vit-b-32", *, seed: int = 0) -> Path:
    """Save a CLIP with a real architecture (see ``CLIP_ARCHS``) and random weights, for timing."""
    if arch not in CLIP_ARCHS:
        raise ValueError(f"unknown arch {arch!r}; choose one of {sorted(CLIP_ARCHS)}")
    return _save_clip(directory, CLIP_ARCHS[arch], seed)
