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
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = [
    "CLIP_ARCHS",
    "COLQWEN2_2B",
    "colqwen2_parts",
    "make_clip_tokenizer",
    "make_random_clip",
    "make_random_colqwen2",
    "make_tiny_clip",
    "make_tiny_colpali",
    "make_tiny_colqwen2",
]

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


def make_clip_tokenizer(
    directory: str | Path,
    *,
    model_max_length: int = 77,
    corpus: Iterable[str] | None = None,
    vocab_size: int = 8192,
) -> Any:
    """Write a CLIP tokenizer to ``directory`` and return it.

    Without ``corpus``: byte-level (514 tokens, no merges): every byte is a token, alone or
    word-final (``</w>``), so any text tokenizes, at about 3x the tokens of CLIP's own BPE.
    With ``corpus``: BPE merges learned from it (CLIP's normalisation, word split and
    ``</w>`` suffix) up to ``vocab_size``, so common words are one token as in CLIP's
    49,408-token vocabulary; for timing the text tower on realistic query lengths.
    Either way ``<|startoftext|>`` and ``<|endoftext|>`` (also the pad token) take the last
    two ids, like in the real vocabulary, so CLIP's "pool at the highest id" rule holds.
    """
    from transformers import CLIPTokenizer

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    chars = list(_bytes_to_unicode().values())
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": i + 256 for i, c in enumerate(chars)})
    merges = _learn_merges(corpus, vocab_size) if corpus is not None else []
    for left, right in merges:
        vocab.setdefault(left + right, len(vocab))
    vocab[_BOS] = len(vocab)
    vocab[_EOS] = len(vocab)
    (directory / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), "utf-8")
    lines = "".join(f"{left} {right}\n" for left, right in merges)
    (directory / "merges.txt").write_text("#version: 0.2\n" + lines, "utf-8")
    tokenizer = CLIPTokenizer.from_pretrained(directory, model_max_length=model_max_length)
    tokenizer.save_pretrained(directory)  # adds tokenizer.json/tokenizer_config.json like hub repos
    return tokenizer


def _learn_merges(corpus: Iterable[str], vocab_size: int) -> list[tuple[str, str]]:
    """BPE merges learned from ``corpus`` with CLIP's pre-tokenisation (``tokenizers``' trainer)."""
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE(end_of_word_suffix="</w>", continuing_subword_prefix=""))
    tokenizer.normalizer = normalizers.Sequence(
        [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()]
    )
    words = Regex(r"""'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""")
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(words, behavior="removed", invert=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        end_of_word_suffix="</w>",
        show_progress=False,
    )
    tokenizer.train_from_iterator(corpus, trainer)
    merges = json.loads(tokenizer.to_str())["model"]["merges"]
    pairs = [m.split(" ", 1) if isinstance(m, str) else m for m in merges]
    return [(left, right) for left, right in pairs]


def _merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Shallow-merge ``overrides`` into ``base``, one level deeper for the sub-configs."""
    out = {**base}
    for key, value in overrides.items():
        if key in ("text_config", "vision_config"):
            out[key] = {**base.get(key, {}), **value}
        else:
            out[key] = value
    return out


def _save_clip(
    directory: str | Path,
    config_kwargs: dict[str, Any],
    seed: int,
    corpus: Iterable[str] | None = None,
) -> Path:
    """Build a randomly initialised CLIPModel and save model, tokenizer and image processor."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    positions = config_kwargs.get("text_config", {}).get("max_position_embeddings", 77)
    tokenizer = make_clip_tokenizer(directory, model_max_length=positions, corpus=corpus)
    bos, eos = tokenizer.convert_tokens_to_ids([_BOS, _EOS])
    special = {"vocab_size": len(tokenizer), "bos_token_id": bos, "eos_token_id": eos,
               "pad_token_id": eos}  # fmt: skip
    kwargs = _merge({"text_config": special}, config_kwargs)
    config: Any = CLIPConfig(**kwargs)
    torch.manual_seed(seed)
    CLIPModel(config).eval().save_pretrained(directory)
    size = config.vision_config.image_size
    processor = CLIPImageProcessorPil(
        size={"shortest_edge": size}, crop_size={"height": size, "width": size}
    )
    processor.save_pretrained(directory)
    # A marker so reports can say these weights are random (see mmrag.evaluate).
    (directory / RANDOM_WEIGHTS_MARKER).write_text("random weights, mmrag.testing\n")
    return directory


def make_tiny_clip(
    directory: str | Path,
    *,
    seed: int = 0,
    corpus: Iterable[str] | None = None,
    **config_overrides: Any,
) -> Path:
    """Save a tiny random CLIP (32x32 images, patch 8, 16-d embeddings) to ``directory``.

    ``config_overrides`` are CLIPConfig keywords; ``text_config``/``vision_config``
    dicts are merged into the tiny defaults, e.g. ``vision_config={"image_size": 48}``;
    ``corpus`` learns the tokenizer's BPE merges from those texts (see make_clip_tokenizer).
    """
    tiny = {
        "projection_dim": 16,
        "text_config": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                        "num_attention_heads": 2, "max_position_embeddings": 77},
        "vision_config": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                          "num_attention_heads": 2, "image_size": 32, "patch_size": 8},
    }  # fmt: skip
    return _save_clip(directory, _merge(tiny, config_overrides), seed, corpus)


def make_random_clip(
    directory: str | Path,
    arch: str = "vit-b-32",
    *,
    seed: int = 0,
    corpus: Iterable[str] | None = None,
) -> Path:
    """Save a CLIP with a real architecture (see ``CLIP_ARCHS``) and random weights, for timing.

    ``corpus`` gives it a BPE tokenizer learned from those texts (see
    :func:`make_clip_tokenizer`), so queries take about as many tokens as with CLIP's own.
    """
    if arch not in CLIP_ARCHS:
        raise ValueError(f"unknown arch {arch!r}; choose one of {sorted(CLIP_ARCHS)}")
    return _save_clip(directory, CLIP_ARCHS[arch], seed, corpus)


# --------------------------------------------------------------------------- page models

_QWEN_SPECIALS = ("<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                  "<|image_pad|>", "<|video_pad|>")  # fmt: skip

#: The real ColQwen2 v1.0 architecture (Qwen2-VL-2B-Instruct's config.json, 128-d projection);
#: ``max_pixels`` is 768 visual tokens of 28x28 pixels, the colqwen2 processors' cap.
COLQWEN2_2B: dict[str, Any] = {
    "embedding_dim": 128,
    "text_config": {"vocab_size": 151936, "hidden_size": 1536, "intermediate_size": 8960,
                    "num_hidden_layers": 28, "num_attention_heads": 12, "num_key_value_heads": 2,
                    "max_position_embeddings": 32768, "rms_norm_eps": 1e-6,
                    "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0,
                                        "mrope_section": [16, 24, 24]}},
    "vision_config": {"depth": 32, "embed_dim": 1280, "hidden_size": 1536, "num_heads": 16,
                      "mlp_ratio": 4, "patch_size": 14, "spatial_merge_size": 2,
                      "temporal_patch_size": 2},
    "tie_word_embeddings": True,
    "min_pixels": 4 * 28 * 28,
    "max_pixels": 768 * 28 * 28,
}  # fmt: skip

_TINY_COLQWEN2: dict[str, Any] = {
    "embedding_dim": 16,
    "text_config": {"vocab_size": 264, "hidden_size": 32, "intermediate_size": 64,
                    "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1,
                    "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0,
                                        "mrope_section": [2, 3, 3]}},
    "vision_config": {"depth": 2, "embed_dim": 32, "hidden_size": 32, "num_heads": 2,
                      "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2},
    "tie_word_embeddings": False,
    "min_pixels": 56 * 56,
    "max_pixels": 112 * 112,
}  # fmt: skip


def _qwen_tokenizer() -> Any:
    """A byte-level Qwen2 tokenizer (every byte a token, no merges) with Qwen2-VL's specials."""
    from tokenizers import AddedToken
    from transformers import Qwen2Tokenizer

    vocab = {c: i for i, c in enumerate(_bytes_to_unicode().values())}
    for token in ("<|endoftext|>", *_QWEN_SPECIALS):
        vocab[token] = len(vocab)
    tokenizer = Qwen2Tokenizer(vocab=vocab, merges=[])
    specials = [AddedToken(t, special=True, normalized=False) for t in _QWEN_SPECIALS]
    tokenizer.add_special_tokens({"additional_special_tokens": specials})
    return tokenizer


def colqwen2_parts(arch: dict[str, Any]) -> tuple[Any, Any]:
    """The processor (byte-level tokenizer built here) and the ColQwen2Config for ``arch``."""
    from transformers import ColQwen2Config, ColQwen2Processor, Qwen2VLImageProcessorPil

    tokenizer = _qwen_tokenizer()
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in ("<|endoftext|>", *_QWEN_SPECIALS)}
    images = Qwen2VLImageProcessorPil(
        min_pixels=arch["min_pixels"], max_pixels=arch["max_pixels"], patch_size=14, merge_size=2
    )
    processor = ColQwen2Processor(image_processor=images, tokenizer=tokenizer)
    text = {**arch["text_config"], "bos_token_id": None, "eos_token_id": ids["<|endoftext|>"],
            "pad_token_id": ids["<|endoftext|>"]}  # fmt: skip
    vlm = {"model_type": "qwen2_vl", "text_config": text, "vision_config": arch["vision_config"],
           "image_token_id": ids["<|image_pad|>"], "video_token_id": ids["<|video_pad|>"],
           "vision_start_token_id": ids["<|vision_start|>"],
           "vision_end_token_id": ids["<|vision_end|>"],
           "tie_word_embeddings": arch["tie_word_embeddings"]}  # fmt: skip
    return processor, ColQwen2Config(vlm_config=vlm, embedding_dim=arch["embedding_dim"])


def _save_colqwen2(directory: str | Path, arch: dict[str, Any], seed: int) -> Path:
    import torch
    from transformers import ColQwen2ForRetrieval

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    processor, config = colqwen2_parts(arch)
    processor.save_pretrained(directory)
    torch.manual_seed(seed)
    ColQwen2ForRetrieval(config).eval().save_pretrained(directory)
    (directory / RANDOM_WEIGHTS_MARKER).write_text("random weights, mmrag.testing\n")
    return directory


def make_tiny_colqwen2(directory: str | Path, *, seed: int = 0) -> Path:
    """Save a tiny random ColQwen2 (2 layers, 16-d vectors, <=16 image tokens) to ``directory``."""
    return _save_colqwen2(directory, _TINY_COLQWEN2, seed)


def make_random_colqwen2(directory: str | Path, *, seed: int = 0) -> Path:
    """Save a ColQwen2 with the real 2B architecture (``COLQWEN2_2B``) and random weights."""
    return _save_colqwen2(directory, COLQWEN2_2B, seed)


def _gemma_tokenizer() -> Any:
    """A byte-fallback Gemma tokenizer: specials, then one token per byte, then ``<image>``."""
    from tokenizers import AddedToken
    from transformers import GemmaTokenizer

    vocab = {"<pad>": 0, "<eos>": 1, "<bos>": 2, "<unk>": 3, "<mask>": 4}
    vocab.update({f"<0x{b:02X}>": 5 + b for b in range(256)})
    vocab["<image>"] = len(vocab)
    tokenizer = GemmaTokenizer(vocab=vocab, merges=[])
    image = AddedToken("<image>", special=True, normalized=False)
    tokenizer.add_special_tokens({"additional_special_tokens": [image]})
    return tokenizer


def make_tiny_colpali(directory: str | Path, *, seed: int = 0) -> Path:
    """Save a tiny random ColPali (PaliGemma: 28x28 images in 4 patches, 16-d vectors)."""
    import torch
    from transformers import (
        ColPaliConfig,
        ColPaliForRetrieval,
        ColPaliProcessor,
        SiglipImageProcessorPil,
    )

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    images = SiglipImageProcessorPil(size={"height": 28, "width": 28})
    # (28 / 14) ** 2 patches: PaliGemma's processors read it from the image processor.
    images.image_seq_length = 4  # type: ignore[attr-defined]
    processor = ColPaliProcessor(image_processor=images, tokenizer=_gemma_tokenizer())
    processor.save_pretrained(directory)
    vision = {"model_type": "siglip_vision_model", "hidden_size": 32, "intermediate_size": 64,
              "num_hidden_layers": 2, "num_attention_heads": 2, "image_size": 28,
              "patch_size": 14, "projection_dim": 32}  # fmt: skip
    text = {"model_type": "gemma", "vocab_size": len(processor.tokenizer), "hidden_size": 32,
            "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
            "num_key_value_heads": 1, "head_dim": 16, "pad_token_id": 0, "bos_token_id": 2,
            "eos_token_id": 1}  # fmt: skip
    vlm = {
        "model_type": "paligemma",
        "vision_config": vision,
        "text_config": text,
        "image_token_id": processor.image_token_id,
        "projection_dim": 32,
        "hidden_size": 32,
    }
    config = ColPaliConfig(vlm_config=vlm, embedding_dim=16)
    torch.manual_seed(seed)
    ColPaliForRetrieval(config).eval().save_pretrained(directory)
    (directory / RANDOM_WEIGHTS_MARKER).write_text("random weights, mmrag.testing\n")
    return directory
