"""ClipEncoder on a tiny random CLIP saved locally, checked against transformers itself."""

from __future__ import annotations

import io
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps
from transformers import CLIPImageProcessorPil, CLIPModel, CLIPTokenizer

from mmrag.errors import InputError, ModelLoadError
from mmrag.models import precision as precision_module
from mmrag.models.base import ImageTextEncoder
from mmrag.models.clip import ClipEncoder, load_for_model, preprocess_image
from mmrag.testing import make_tiny_clip

TEXTS = [
    "a photo of a cat",
    "x",
    "an exploded view of a centrifugal pump with numbered parts " * 12,  # > 77 tokens
    "Ünïcödé & punctuation!?",
]


def _images() -> list[Image.Image]:
    """Odd sizes and modes: landscape, portrait, smaller than the input, RGBA, grayscale, P."""
    rng = np.random.default_rng(0)

    def noise(h: int, w: int, c: int) -> np.ndarray:
        return rng.integers(0, 256, (h, w, c), dtype=np.uint8)

    rgba = Image.fromarray(noise(40, 57, 4), "RGBA")
    gray = Image.fromarray(noise(45, 45, 1)[..., 0], "L")
    return [
        Image.fromarray(noise(50, 90, 3)),
        Image.fromarray(noise(77, 41, 3)),
        Image.fromarray(noise(20, 25, 3)),
        rgba,
        gray,
        Image.fromarray(noise(33, 60, 3)).convert("P"),
    ]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_clip(tmp_path_factory.mktemp("tiny-clip"))


@pytest.fixture(scope="module")
def encoder(model_dir: Path) -> ClipEncoder:
    return ClipEncoder(str(model_dir), device="cpu", precision="fp32")


@pytest.fixture(scope="module")
def reference(model_dir: Path) -> tuple[CLIPModel, CLIPTokenizer, CLIPImageProcessorPil]:
    model = CLIPModel.from_pretrained(model_dir).eval()
    return (
        model,
        CLIPTokenizer.from_pretrained(model_dir),
        CLIPImageProcessorPil.from_pretrained(model_dir),
    )


def _normalised(features: torch.Tensor) -> np.ndarray:
    return torch.nn.functional.normalize(features, dim=-1).numpy()


def test_constructor_loads_nothing_and_reads_sizes_from_config(model_dir: Path) -> None:
    enc = ClipEncoder(str(model_dir))
    assert not enc.loaded
    assert (enc.dim, enc.image_size) == (16, 32)
    assert not enc.loaded
    assert isinstance(enc, ImageTextEncoder)


def test_constructor_accepts_a_missing_path_and_encoding_names_it(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    enc = ClipEncoder(str(missing))
    with pytest.raises(ModelLoadError) as err:
        enc.encode_texts(["hello"])
    assert str(missing) in str(err.value)
    assert "--model" in str(err.value) and "MMRAG_MODEL" in str(err.value)


def test_directory_without_weights_raises_model_load_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=str(tmp_path)):
        ClipEncoder(str(tmp_path)).encode_texts(["hello"])


def test_offline_hub_id_not_in_cache_says_offline() -> None:
    enc = ClipEncoder("mmrag-tests/no-such-clip", offline=True)
    with pytest.raises(ModelLoadError) as err:
        enc.encode_texts(["hello"])
    message = str(err.value)
    assert "mmrag-tests/no-such-clip" in message and "offline" in message


def test_preprocess_matches_clip_image_processor(
    reference: tuple[CLIPModel, CLIPTokenizer, CLIPImageProcessorPil],
) -> None:
    processor = reference[2]
    for image in _images():
        ours = preprocess_image(image, 32)
        theirs = processor(image, do_rescale=False, do_normalize=False, return_tensors="np")
        theirs_hwc = theirs["pixel_values"][0].transpose(1, 2, 0)
        assert ours.shape == (32, 32, 3) and ours.dtype == np.uint8
        assert np.abs(ours.astype(np.float32) - theirs_hwc).max() <= 1.0


def test_image_embeddings_match_transformers_reference(
    encoder: ClipEncoder, reference: tuple[CLIPModel, CLIPTokenizer, CLIPImageProcessorPil]
) -> None:
    model, _, processor = reference
    images = _images()
    with torch.no_grad():
        pixels = processor(images, return_tensors="pt")["pixel_values"]
        expected = _normalised(model.get_image_features(pixel_values=pixels).pooler_output)
    np.testing.assert_allclose(encoder.encode_images(images), expected, atol=1e-5)


def test_text_embeddings_match_reference_padded_to_77(
    encoder: ClipEncoder, reference: tuple[CLIPModel, CLIPTokenizer, CLIPImageProcessorPil]
) -> None:
    model, tokenizer, _ = reference
    tokens = tokenizer(
        TEXTS, padding="max_length", max_length=77, truncation=True, return_tensors="pt"
    )
    with torch.no_grad():
        expected = _normalised(model.get_text_features(**tokens).pooler_output)
    np.testing.assert_allclose(encoder.encode_texts(TEXTS), expected, atol=1e-5)


def test_batch_size_does_not_change_embeddings(model_dir: Path, encoder: ClipEncoder) -> None:
    small = ClipEncoder(str(model_dir), device="cpu", precision="fp32", batch_size=2)
    np.testing.assert_allclose(
        small.encode_images(_images()), encoder.encode_images(_images()), atol=1e-5
    )
    np.testing.assert_allclose(small.encode_texts(TEXTS), encoder.encode_texts(TEXTS), atol=1e-5)
    one_by_one = np.concatenate([encoder.encode_texts([t]) for t in TEXTS])
    np.testing.assert_allclose(one_by_one, encoder.encode_texts(TEXTS), atol=1e-5)


def test_outputs_are_unit_norm_float32(encoder: ClipEncoder) -> None:
    for vectors in (encoder.encode_images(_images()), encoder.encode_texts(TEXTS)):
        assert vectors.dtype == np.float32 and vectors.shape[1] == encoder.dim
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_empty_inputs_give_empty_matrices(encoder: ClipEncoder) -> None:
    assert encoder.encode_texts([]).shape == (0, 16)
    assert encoder.encode_images([]).shape == (0, 16)
    assert encoder.encode_pixels(np.zeros((0, 32, 32, 3), np.uint8)).shape == (0, 16)


def test_encode_pixels_rejects_wrong_shape_or_dtype(encoder: ClipEncoder) -> None:
    with pytest.raises(InputError):
        encoder.encode_pixels(np.zeros((2, 224, 224, 3), np.uint8))
    with pytest.raises(InputError):
        encoder.encode_pixels(np.zeros((2, 32, 32, 3), np.float32))


def test_bf16_agrees_with_fp32(model_dir: Path, encoder: ClipEncoder) -> None:
    # bf16 runs on any CPU (emulated where AMX/AVX512-BF16 are missing); only speed differs.
    bf16 = ClipEncoder(str(model_dir), device="cpu", precision="bf16")
    assert bf16.precision == "bf16"
    for ours, ref in (
        (bf16.encode_images(_images()), encoder.encode_images(_images())),
        (bf16.encode_texts(TEXTS), encoder.encode_texts(TEXTS)),
    ):
        assert ours.dtype == np.float32
        assert (ours * ref).sum(axis=1).min() > 0.99


def test_auto_precision_uses_bf16_only_where_the_cpu_runs_it_natively(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert ClipEncoder(str(model_dir), device="cpu", precision="fp32").precision == "fp32"
    monkeypatch.setattr(precision_module, "cpu_supports_bf16", lambda: True)
    assert ClipEncoder(str(model_dir), device="cpu").precision == "bf16"
    monkeypatch.setattr(precision_module, "cpu_supports_bf16", lambda: False)
    assert ClipEncoder(str(model_dir), device="cpu").precision == "fp32"
    assert ClipEncoder(str(model_dir), device="cuda").precision == "fp16"


def test_release_frees_weights_and_next_use_reloads(model_dir: Path) -> None:
    enc = ClipEncoder(str(model_dir), device="cpu", precision="fp32")
    first = enc.encode_texts(["a dog"])
    enc.release()
    assert not enc.loaded
    np.testing.assert_allclose(enc.encode_texts(["a dog"]), first, atol=1e-6)
    assert enc.loaded


def test_pickled_encoder_carries_settings_not_weights(encoder: ClipEncoder) -> None:
    encoder.encode_texts(["load it"])
    blob = pickle.dumps(encoder)
    assert len(blob) < 10_000
    clone = pickle.loads(blob)
    assert not clone.loaded
    image = _images()[0]
    np.testing.assert_array_equal(clone.preprocess(image), encoder.preprocess(image))


def test_importing_the_clip_module_does_not_import_torch() -> None:
    code = "import sys, mmrag.models.clip; print('torch' in sys.modules)"
    src = str(Path(precision_module.__file__).parents[2])
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": src},
    )
    assert result.stdout.strip() == "False"


def _jpeg_with_orientation(width: int, height: int, orientation: int) -> bytes:
    """A JPEG whose left half is red and right half blue, tagged with an EXIF orientation."""
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[:, : width // 2] = (255, 0, 0)
    pixels[:, width // 2 :] = (0, 0, 255)
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=95, exif=exif)
    return buffer.getvalue()


def test_load_for_model_applies_exif_orientation_and_drafts_jpegs(tmp_path: Path) -> None:
    path = tmp_path / "rotated.jpg"
    path.write_bytes(_jpeg_with_orientation(800, 400, orientation=6))  # displayed rotated 90°
    pixels = load_for_model(path, 32)
    assert pixels.shape == (32, 32, 3) and pixels.dtype == np.uint8
    # Displayed upright the halves are stacked vertically: top and bottom differ, not left/right.
    top, bottom = pixels[:8].mean(axis=(0, 1)), pixels[-8:].mean(axis=(0, 1))
    assert abs(top[0] - bottom[0]) > 200 and abs(top[2] - bottom[2]) > 200
    with Image.open(path) as full:
        expected = preprocess_image(ImageOps.exif_transpose(full), 32, draft=False)
    assert np.abs(pixels.astype(int) - expected.astype(int)).mean() < 3


def test_preprocess_drafts_an_unloaded_jpeg(tmp_path: Path) -> None:
    path = tmp_path / "big.jpg"
    Image.new("RGB", (1024, 768), (10, 200, 30)).save(path)
    with Image.open(path) as image:
        pixels = preprocess_image(image, 32)
        assert image.size == (128, 96)  # decoded at 1/8 scale, still >= 32 on both sides
    assert np.abs(pixels.astype(int) - (10, 200, 30)).max() <= 3


def test_load_for_model_names_an_unreadable_file(tmp_path: Path) -> None:
    bad = tmp_path / "not-an-image.jpg"
    bad.write_bytes(b"hello")
    with pytest.raises(InputError, match=r"not-an-image\.jpg"):
        load_for_model(bad, 32)


def test_a_tokenizer_learned_from_a_corpus_keeps_its_words_whole(tmp_path: Path) -> None:
    from mmrag.testing import make_clip_tokenizer

    corpus = ["a dog runs on the beach", "a red bicycle leans on the wall"] * 50
    learned = make_clip_tokenizer(tmp_path / "bpe", corpus=corpus, vocab_size=700)
    byte_level = make_clip_tokenizer(tmp_path / "bytes")
    words = learned.tokenize("a red bicycle")
    assert words == ["a</w>", "red</w>", "bicycle</w>"]
    assert len(byte_level.tokenize("a red bicycle")) == len("a red bicycle") - 2  # 1 per byte
    assert learned.tokenize("xyzzy 42!") == byte_level.tokenize("xyzzy 42!")  # unseen: bytes
    ids = learned("a red bicycle")["input_ids"]
    assert ids[0] == len(learned) - 2 and ids[-1] == len(learned) - 1  # start/end: last ids


def test_a_random_clip_with_a_learned_tokenizer_encodes_like_transformers(tmp_path: Path) -> None:
    corpus = ["a dog runs on the beach", "a red bicycle leans on the wall"] * 50
    learned_dir = make_tiny_clip(tmp_path / "learned", corpus=corpus)
    model = CLIPModel.from_pretrained(learned_dir).eval()
    tokenizer = CLIPTokenizer.from_pretrained(learned_dir)
    assert model.config.text_config.vocab_size == len(tokenizer) > 514
    batch = tokenizer(["a red bicycle"], return_tensors="pt")
    with torch.inference_mode():
        want = _normalised(model.get_text_features(**batch).pooler_output)
    got = ClipEncoder(str(learned_dir), device="cpu", precision="fp32").encode_texts(
        ["a red bicycle"]
    )
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_model_loads_wait_for_each_other(model_dir: Path) -> None:
    """A load sets torch's default dtype for its duration: two at once could mix dtypes."""
    import threading

    encoder = ClipEncoder(str(model_dir), device="cpu", precision="fp32")
    done = threading.Event()
    worker = threading.Thread(target=lambda: (encoder.encode_images(_images()[:1]), done.set()))
    with precision_module.load_lock:  # another model is loading
        worker.start()
        assert not done.wait(0.5) and not encoder.loaded
    worker.join(30)
    assert done.is_set() and encoder.loaded
