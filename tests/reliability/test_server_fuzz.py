"""Every route of the HTTP API fuzzed from its own OpenAPI schema (schemathesis, all checks).

A failure is a 5xx, or a contract failure: a status or body the schema does not document,
a schema-valid request refused, a schema-invalid one accepted. Run in-process (ASGI), on a
real index of six photos and their captions, with and without an API key.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import mmrag

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is in the dev extra")
from hypothesis import HealthCheck, settings  # noqa: E402  (installed with schemathesis)

pytestmark = [pytest.mark.reliability, pytest.mark.integration]

#: Generated cases per route and mode (positive and negative); kept small for CI.
EXAMPLES = 25


def _images() -> Any:
    """Real small images in every documented upload format (random bytes are a 400 by design)."""
    import io

    from hypothesis import strategies as st
    from PIL import Image

    def encode(size: tuple[int, int], colour: tuple[int, int, int], fmt: str) -> bytes:
        buffer = io.BytesIO()
        Image.new("RGB", size, colour).save(buffer, format=fmt)
        return buffer.getvalue()

    sizes = st.tuples(st.integers(1, 64), st.integers(1, 64))
    colours = st.tuples(*[st.integers(0, 255)] * 3)
    return {
        media: st.builds(encode, sizes, colours, st.just(fmt))
        for media, fmt in (
            ("image/jpeg", "JPEG"),
            ("image/png", "PNG"),
            ("image/gif", "GIF"),
            ("image/webp", "WEBP"),
        )
    }


for _media, _strategy in _images().items():
    schemathesis.openapi.media_type(_media, _strategy)


@pytest.fixture(scope="module")
def fuzz_index(tmp_path_factory: pytest.TempPathFactory, tiny_clip: Path) -> Iterator[Any]:
    from conftest import make_corpus

    root = tmp_path_factory.mktemp("fuzz")
    index = mmrag.open(root / "idx", model=str(tiny_clip), ocr=False)
    index.add(make_corpus(root))
    yield index
    index.close()


KEY = "s3cret-key"


@pytest.fixture(scope="module", params=["open", "keyed"])
def api_schema(request: pytest.FixtureRequest, fuzz_index: Any) -> Any:
    from mmrag.server import create_app

    app = create_app(fuzz_index, api_key=KEY if request.param == "keyed" else None)
    headers = {"X-API-Key": KEY} if request.param == "keyed" else {}
    return schemathesis.openapi.from_asgi("/openapi.json", app), headers


def _fuzz(operation: Any, mode: Any, headers: dict[str, str], calls: list[str]) -> list[str]:
    """Run EXAMPLES generated cases of one operation; the failures, described."""
    from hypothesis import given
    from hypothesis.errors import Unsatisfiable

    failures: list[str] = []

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def run(case: Any) -> None:
        calls.append(operation.label)
        try:
            # A negative case may drop or garble the key on purpose: send it as generated.
            case.call_and_validate(headers=headers if mode.value == "positive" else None)
        except Exception as exc:  # collect every route's failures, then fail once
            failures.append(f"{operation.label} [{mode.value}]: {str(exc)[:600]}")

    try:
        run()
    except Unsatisfiable:  # a route without parameters has no invalid request to make
        assert mode.value == "negative"
    return failures


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_every_route_keeps_its_contract(api_schema: Any, mode: str) -> None:
    schema, headers = api_schema
    generation_mode = schemathesis.GenerationMode(mode)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 7  # every route in the schema, none silently dropped
    calls: list[str] = []
    failures = [f for op in operations for f in _fuzz(op, generation_mode, headers, calls)]
    if mode == "positive":  # every route really called (one without parameters: once is all)
        assert all(op.label in calls for op in operations), calls
        assert len(calls) >= 5 * len(operations), len(calls)
    assert not failures, "\n\n".join(failures[:10])
