"""MaxSim, hierarchical token pooling and quantised codes (mmrag.stores.multivector)."""

from __future__ import annotations

import numpy as np
import pytest

from mmrag.errors import ConfigError
from mmrag.stores.multivector import (
    approximate_maxsim,
    decode_codes,
    encode_codes,
    maxsim,
    maxsim_many,
    pool_tokens,
)


def unit(rng: np.random.Generator, n: int, dim: int = 16) -> np.ndarray:
    v = rng.standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_maxsim_many_equals_the_per_document_definition() -> None:
    rng = np.random.default_rng(0)
    query = unit(rng, 5)
    docs = [unit(rng, n) for n in (3, 1, 7, 0, 4)]
    want = [sum(max(float(q @ d) for d in doc) for q in query) if len(doc) else 0.0 for doc in docs]
    assert np.allclose(maxsim_many(query, docs), want, atol=1e-5)
    assert maxsim(query, docs[2]) == pytest.approx(want[2], abs=1e-5)
    assert maxsim_many(query, []).shape == (0,)


def test_pooling_keeps_a_third_of_the_tokens_as_unit_cluster_means() -> None:
    rng = np.random.default_rng(1)
    centres = unit(rng, 4)
    # 4 tight groups of 6 near-identical tokens: pooling by 6 must find the groups.
    tokens = np.concatenate([c + 0.01 * rng.standard_normal((6, 16)) for c in centres])
    pooled = pool_tokens(tokens.astype(np.float32), 6)
    assert pooled.shape == (4, 16)
    assert np.allclose(np.linalg.norm(pooled, axis=1), 1.0, atol=1e-5)
    assert np.allclose(np.sort((pooled @ centres.T).max(0)), 1.0, atol=1e-3)
    assert pool_tokens(unit(rng, 10), 3).shape == (4, 16)  # ceil(10 / 3)


def test_pooling_by_one_changes_nothing_and_zero_is_refused() -> None:
    tokens = unit(np.random.default_rng(2), 5)
    assert np.array_equal(pool_tokens(tokens, 1), tokens)
    with pytest.raises(ConfigError):
        pool_tokens(tokens, 0)


def test_pooled_pages_keep_most_of_their_maxsim_ranking() -> None:
    rng = np.random.default_rng(3)
    docs = [unit(rng, 60) for _ in range(30)]
    queries = [docs[i][:8] + 0.3 * unit(rng, 8) for i in range(10)]  # each near one page
    pooled = [pool_tokens(d, 2) for d in docs]
    hits = sum(int(np.argmax(maxsim_many(q, pooled))) == i for i, q in enumerate(queries))
    assert hits >= 8


@pytest.mark.parametrize("kind", ["int8", "binary"])
def test_codes_are_compact_and_approximate_the_vectors(kind: str) -> None:
    rng = np.random.default_rng(4)
    tokens = unit(rng, 20, 128)
    codes = encode_codes(tokens, kind)  # type: ignore[arg-type]
    assert codes.nbytes == tokens.nbytes // (4 if kind == "int8" else 32)
    approx = decode_codes(codes, kind, 128)  # type: ignore[arg-type]
    cosines = (approx * tokens).sum(1) / np.linalg.norm(approx, axis=1)
    assert cosines.min() > (0.99 if kind == "int8" else 0.7)
    query = unit(rng, 6, 128)
    rough = approximate_maxsim(query, [codes], kind, 128)  # type: ignore[arg-type]
    assert rough.shape == (1,)
    with pytest.raises(ConfigError):
        encode_codes(tokens, "pq")  # type: ignore[arg-type]
