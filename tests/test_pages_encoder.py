"""Page encoders (ColQwen2, ColPali) on tiny random checkpoints: parity with transformers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw

from mmrag import registry
from mmrag.config import Settings
from mmrag.errors import ConfigError, InputError, ModelLoadError
from mmrag.models.base import PageEncoder
from mmrag.models.pages import PageEncoderModel
from mmrag.stores.multivector import maxsim_many
from mmrag.testing import make_tiny_colpali, make_tiny_colqwen2

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

QUERIES = ["revenue by region", "a red chart", "x"]


@pytest.fixture(scope="module", params=["colqwen2", "colpali"])
def checkpoint(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """(family, directory) of a tiny random checkpoint saved like a hub model."""
    family = str(request.param)
    build = make_tiny_colqwen2 if family == "colqwen2" else make_tiny_colpali
    return family, build(tmp_path_factory.mktemp(family))


def pages(sizes: list[tuple[int, int]]) -> list[Image.Image]:
    """Distinct synthetic page images of the given sizes."""
    out = []
    for i, size in enumerate(sizes):
        image = Image.new("RGB", size, (250, 250, 245))
        draw = ImageDraw.Draw(image)
        draw.rectangle([5 + 7 * i, 10, 40 + 9 * i, 30 + 5 * i], fill=(40 * i, 90, 200 - 30 * i))
        draw.line([0, size[1] - 1, size[0] - 1, 3 * i], fill=(0, 0, 0), width=3)
        out.append(image)
    return out


def reference(family: str, path: Path, *, images: Any = None, texts: Any = None) -> Any:
    """The transformers computation: processor, model, embeddings and attention mask."""
    cls = getattr(transformers, f"{'ColQwen2' if family == 'colqwen2' else 'ColPali'}ForRetrieval")
    model = cls.from_pretrained(path, dtype=torch.float32).eval()
    processor = transformers.AutoProcessor.from_pretrained(path)
    batch = processor.process_images(images) if images else processor.process_queries(texts)
    batch.pop("labels", None)
    with torch.no_grad():
        embeddings = model(**batch).embeddings
    return processor, embeddings, batch["attention_mask"].bool()


def test_page_embeddings_equal_the_reference_model(checkpoint: Any) -> None:
    family, path = checkpoint
    images = pages([(120, 160), (120, 160), (120, 160)])
    encoder = PageEncoderModel(str(path), device="cpu", precision="fp32", batch_size=2)
    ours = encoder.encode_pages(images)
    _, ref, mask = reference(family, path, images=images)
    assert len(ours) == 3
    for mine, row, keep in zip(ours, ref, mask, strict=True):
        assert mine.dtype == np.float32 and mine.shape == (int(keep.sum()), encoder.dim)
        assert np.allclose(mine, row[keep].numpy(), atol=1e-5)
        assert np.allclose(np.linalg.norm(mine, axis=1), 1.0, atol=1e-5)


def test_query_embeddings_equal_the_reference_model(checkpoint: Any) -> None:
    family, path = checkpoint
    encoder = PageEncoderModel(str(path), device="cpu", precision="fp32")
    ours = encoder.encode_queries(QUERIES)
    _, ref, mask = reference(family, path, texts=QUERIES)
    assert [len(q) for q in ours] == mask.sum(1).tolist()
    assert len(ours[0]) > len(ours[2])  # padding is removed, not kept
    for mine, row, keep in zip(ours, ref, mask, strict=True):
        assert np.allclose(mine, row[keep].numpy(), atol=1e-5)


def test_maxsim_scores_equal_the_processors_score_retrieval(checkpoint: Any) -> None:
    family, path = checkpoint
    images = pages([(120, 160)] * 4)
    encoder = PageEncoderModel(str(path), device="cpu", precision="fp32")
    page_vecs, query_vecs = encoder.encode_pages(images), encoder.encode_queries(QUERIES)
    ours = np.stack([maxsim_many(q, page_vecs) for q in query_vecs])
    processor, ref_pages, _ = reference(family, path, images=images)
    _, ref_queries, _ = reference(family, path, texts=QUERIES)
    # The helper on the reference model's padded batch outputs, and on our unpadded arrays.
    padded = processor.score_retrieval(ref_queries, ref_pages).numpy()
    listed = processor.score_retrieval(
        [torch.from_numpy(q) for q in query_vecs], [torch.from_numpy(p) for p in page_vecs]
    ).numpy()
    assert np.allclose(ours, padded, atol=1e-4)
    assert np.allclose(ours, listed, atol=1e-4)
    assert (np.argsort(-ours, axis=1) == np.argsort(-padded, axis=1)).all()


def test_batching_does_not_change_page_vectors(checkpoint: Any) -> None:
    _, path = checkpoint
    images = pages([(120, 160), (90, 60), (200, 110)])  # different sizes in one batch
    one = PageEncoderModel(str(path), device="cpu", precision="fp32", batch_size=1)
    three = PageEncoderModel(str(path), device="cpu", precision="fp32", batch_size=3)
    for a, b in zip(one.encode_pages(images), three.encode_pages(images), strict=True):
        assert a.shape == b.shape and np.allclose(a, b, atol=1e-4)


def test_bf16_agrees_with_fp32(checkpoint: Any) -> None:
    _, path = checkpoint
    images = pages([(120, 160)] * 2)
    fp32 = PageEncoderModel(str(path), device="cpu", precision="fp32").encode_pages(images)
    bf16 = PageEncoderModel(str(path), device="cpu", precision="bf16").encode_pages(images)
    cosines = np.concatenate([(a * b).sum(1) for a, b in zip(fp32, bf16, strict=True)])
    assert cosines.mean() > 0.99 and cosines.min() > 0.95


def test_dim_and_family_come_from_config_without_loading(checkpoint: Any) -> None:
    family, path = checkpoint
    encoder = PageEncoderModel(str(path))
    assert (encoder.dim, encoder.family, encoder.loaded) == (16, family, False)
    assert isinstance(encoder, PageEncoder)
    encoder.encode_queries(["x"])
    assert encoder.loaded
    encoder.release()
    assert not encoder.loaded


def test_the_registry_builds_page_encoders_from_settings(checkpoint: Any) -> None:
    family, path = checkpoint
    settings = Settings(page_precision="fp32", page_batch_size=3)
    backend, model = registry.page_encoders.split(str(path))
    encoder = registry.page_encoders.create(backend, model, settings)
    assert (backend, encoder.family, encoder.batch_size) == ("transformers", family, 3)
    forced = registry.page_encoders.create(family, str(path), settings)
    assert forced.family == family


def test_a_missing_model_is_a_clear_model_load_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="does not exist"):
        PageEncoderModel(str(tmp_path / "nope")).encode_queries(["x"])
    offline = PageEncoderModel("vidore/not-a-cached-model", offline=True)
    with pytest.raises(ModelLoadError, match="offline"):
        offline.encode_queries(["x"])


def test_bad_settings_and_inputs_are_named(checkpoint: Any) -> None:
    _, path = checkpoint
    with pytest.raises(ConfigError):
        PageEncoderModel(str(path), precision="int8")
    with pytest.raises(ConfigError):
        PageEncoderModel(str(path), family="clip")
    with pytest.raises(InputError, match="page image 1"):
        PageEncoderModel(str(path)).encode_pages([Image.new("RGB", (8, 8)), "x"])  # type: ignore[list-item]
    assert PageEncoderModel(str(path)).encode_pages([]) == []
