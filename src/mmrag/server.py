"""The HTTP API (FastAPI, OpenAPI docs at /docs) and the small web page, over one Index.

app = create_app(mmrag.open("my-index"))
uvicorn.run(app, host="127.0.0.1", port=8000)

Every error is JSON of one shape, :class:`ErrorBody` (``{"error": ..., "message": ...}``),
with a 4xx status whenever the client is at fault (a failed answer, a 502, adds the sources
retrieval found: :class:`AnswerErrorBody`), and every status a route can answer is in the
OpenAPI schema (fuzzed against it by schemathesis in tests/reliability). With an API key
(``MMRAG_API_KEY``) every route but ``/api/health`` needs it in ``X-API-Key``.
Items and thumbnails are addressed by id or content hash only, and the latest evaluation
report's files (``/api/report/NAME``) by a fixed name only: never by a client path.
"""

from __future__ import annotations

import hmac
from importlib import resources
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, create_model

from .app import Index
from .errors import (
    AnswerError,
    ConfigError,
    DependencyError,
    InputError,
    MmragError,
    ModelMismatchError,
)
from .evaluate.latest import MEDIA_TYPES, LatestReport, latest_report

try:  # FastAPI resolves endpoint annotations at module level, so import it here
    from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import HTMLResponse, JSONResponse, Response
    from fastapi.security import APIKeyHeader
    from starlette.exceptions import HTTPException as StarletteHTTPException
except ImportError as exc:  # pragma: no cover - the 'server' extra is missing
    raise DependencyError("fastapi", "server", "The HTTP server") from exc

__all__ = ["MAX_UPLOAD_BYTES", "AnswerErrorBody", "AskBody", "ErrorBody", "create_app"]

#: A query image upload larger than this is refused before decoding.
MAX_UPLOAD_BYTES = 20_000_000
#: Upload media types /api/similar documents; it takes any image/* and, for clients that
#: send no type, application/octet-stream (the bytes are checked when decoded either way).
UPLOAD_TYPES = ("image/jpeg", "image/png", "image/webp", "image/gif")
#: Item ids and thumbnail keys: hex digests (see mmrag.types.item_id / content_hash).
_ITEM_ID = r"^[0-9a-f]{8,64}$"
_HASH = r"^[0-9a-f]{64}$"


# Module level: FastAPI resolves endpoint annotations in the module's namespace.
_GivenKey = Annotated[str | None, Depends(APIKeyHeader(name="X-API-Key", auto_error=False))]
#: A --where filter as mmrag.where parses it: ``key=value[,value]`` or ``key<number`` (<=, >, >=).
WHERE_PATTERN = (
    r"^\s*[A-Za-z_][A-Za-z0-9_.\-]*\s*"
    # Digits and exponent bounded so that every number the pattern admits is finite.
    r"(=[^<>]*|(<=|>=|<|>)\s*[-+]?([0-9]{1,15}(\.[0-9]{0,15})?|\.[0-9]{1,15})"
    r"([eE][-+]?[0-9]{1,2})?\s*)$"
)
WhereFilter = Annotated[str, StringConstraints(pattern=WHERE_PATTERN, max_length=500)]
Where = Annotated[list[WhereFilter] | None, Query(max_length=20)]
Floor = Annotated[float | None, Query(allow_inf_nan=False)]


def _json_integer(value: Any) -> Any:
    """JSON Schema's integer: 5.0 is one (strict pydantic alone would refuse it), "5" is not."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


class AskBody(BaseModel):
    """A question for /api/ask."""

    # Strict: a body that violates the schema (k as a string, unknown fields) is a 422.
    model_config = ConfigDict(strict=True, extra="forbid")

    question: str = Field(min_length=1, max_length=4000, pattern=r"\S")
    k: Annotated[int, BeforeValidator(_json_integer)] = Field(default=5, ge=1, le=50)
    #: One of the models this server offers (see :func:`_ask_body`), never a client's URL.
    model: str | None = Field(default=None, min_length=1, max_length=200)
    where: list[WhereFilter] = Field(default_factory=list, max_length=20)
    images_only: bool = False


def _ask_body(index: Index) -> type[AskBody]:
    """AskBody whose ``model`` is one the server offers: 'extractive' or its configured model.

    A client never names an arbitrary model or endpoint URL: that would let a request make
    the server call any address, or spend the server's API keys on any model.
    """
    offered = tuple(dict.fromkeys(["extractive", *filter(None, [index.settings.answer_model])]))
    return create_model(  # type: ignore[no-any-return]
        "AskBody",
        __base__=AskBody,
        model=(Literal[offered] | None, None),  # type: ignore[valid-type,arg-type]
    )


class ErrorBody(BaseModel):
    """Every error response: what kind of error, and a message naming the input."""

    error: str
    message: str


class AnswerErrorBody(ErrorBody):
    """/api/ask's 502: the answering model failed; the sources retrieval found are still here."""

    sources: list[dict[str, Any]] = Field(default_factory=list)
    #: Whether asking again may succeed (a timeout, rate limit, server error or cut stream).
    retryable: bool = False


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these error statuses, each an ErrorBody."""
    return {code: {"model": ErrorBody} for code in codes}


def _status_of(exc: MmragError) -> int:
    """The HTTP status for a library error: the client's fault is a 4xx."""
    if isinstance(exc, ModelMismatchError):
        return 409
    if isinstance(exc, AnswerError):  # the answering model failed: a bad gateway, not us
        return 502
    if isinstance(exc, (ConfigError, InputError, DependencyError)):
        return 400  # a bad filter or input, or a model (or its SDK) this server does not have
    return 500


def _error(status: int, error: str, message: str) -> JSONResponse:
    return JSONResponse({"error": error, "message": message}, status_code=status)


_HTTP_NAMES = {
    401: "Unauthorized",
    404: "NotFound",
    405: "MethodNotAllowed",
    413: "PayloadTooLarge",
    415: "UnsupportedMediaType",
    422: "ValidationError",
}


def _install_handlers(app: Any) -> None:
    """Every error as an ErrorBody: library errors, HTTP errors, invalid requests, the rest."""

    @app.exception_handler(MmragError)
    async def _mmrag_error(_: Request, exc: MmragError) -> JSONResponse:
        if isinstance(exc, AnswerError):  # an AnswerErrorBody: the retrieved sources too
            body = AnswerErrorBody(
                error=type(exc).__name__,
                message=str(exc),
                sources=[source.to_dict() for source in exc.sources],
                retryable=exc.retryable,
            )
            return JSONResponse(body.model_dump(), status_code=_status_of(exc))
        return _error(_status_of(exc), type(exc).__name__, str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        name = _HTTP_NAMES.get(exc.status_code, f"HTTP{exc.status_code}")
        return _error(exc.status_code, name, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        parts = [f"{'.'.join(map(str, e.get('loc', ())))}: {e.get('msg')}" for e in exc.errors()]
        return _error(422, "ValidationError", "; ".join(parts) or "invalid request")

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        return _error(500, "InternalError", f"{type(exc).__name__}: {exc}")


def _key_guard(index: Index, api_key: str | None) -> list[Any]:
    """The dependencies that check ``X-API-Key``: none without a key (and none in the schema)."""
    key = api_key
    if key is None and index.settings.api_key is not None:
        key = index.settings.api_key.get_secret_value()
    if not key:
        return []
    expected = key.encode()

    def check(given: _GivenKey = None) -> None:
        if not (given and hmac.compare_digest(given.encode(), expected)):
            raise HTTPException(401, "missing or wrong X-API-Key")

    return [Depends(check)]


def _only(*names: str) -> Any:
    """A dependency refusing query parameters the route does not take (a typo is not ignored)."""
    allowed = frozenset(names)

    def check(request: Request) -> None:
        unknown = sorted(set(request.query_params) - allowed)
        if unknown:
            raise HTTPException(422, f"unknown query parameter(s): {', '.join(unknown)}")

    return Depends(check)


async def _read_upload(request: Request) -> bytes:
    """The request body, refused past MAX_UPLOAD_BYTES without reading it all into memory."""
    media = request.headers.get("content-type", "application/octet-stream").split(";")[0].strip()
    media = media.lower()
    if not (media.startswith("image/") or media == "application/octet-stream"):
        raise HTTPException(415, f"upload type {media!r}: send an image (image/*)")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_UPLOAD_BYTES:
        raise HTTPException(413, f"query image over {MAX_UPLOAD_BYTES} bytes")
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > MAX_UPLOAD_BYTES:
            raise HTTPException(413, f"query image over {MAX_UPLOAD_BYTES} bytes")
    if not data:
        raise HTTPException(400, "empty upload: send the query image's bytes as the body")
    return bytes(data)


_UPLOAD_SCHEMA = {
    "requestBody": {
        "required": True,
        "description": (
            f"The query image's bytes (at most {MAX_UPLOAD_BYTES} bytes); any image/* type, "
            "or application/octet-stream. Bytes that are not an image: 400."
        ),
        "content": {
            media: {"schema": {"type": "string", "format": "binary", "minLength": 1}}
            for media in UPLOAD_TYPES
        },
    }
}


def create_app(index: Index, *, api_key: str | None = None) -> Any:
    """A FastAPI app serving ``index``; ``api_key`` (else ``MMRAG_API_KEY``) guards the API."""
    guard = _key_guard(index, api_key)
    app = FastAPI(
        title="mmrag",
        version="0.1.0",
        summary="Multimodal retrieval and answers",
        responses=_errors(500),
    )
    _install_handlers(app)
    page = resources.files("mmrag.web").joinpath("index.html").read_text("utf-8")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def home() -> str:
        return page

    @app.get("/api/health", dependencies=[_only()])
    def health() -> dict[str, str]:
        """Liveness: answers without a key and without touching the index."""
        return {"status": "ok"}

    @app.get("/api/stats", dependencies=[*guard, _only()], responses=_errors(401, 422))
    def stats() -> dict[str, Any]:
        """What the index holds."""
        return index.stats()

    @app.get(
        "/api/search",
        dependencies=[*guard, _only("q", "k", "where", "min_score", "path", "parse")],
        responses=_errors(400, 401, 422),
    )
    def search(
        # Something besides whitespace (Unicode's too: U+0085), or search has no query.
        q: Annotated[str, Query(min_length=1, max_length=4000, pattern=r"\S")],
        k: Annotated[int, Query(ge=1, le=200)] = 10,
        where: Where = None,
        min_score: Floor = None,
        path: Annotated[list[Literal["clip", "text", "bm25"]] | None, Query(max_length=3)] = None,
        parse: Annotated[bool, Query()] = True,
    ) -> dict[str, Any]:
        """Text query -> images and text, fused; on a product index prices/colours parsed."""
        filters = index.parse_where(where or [])
        hits = index.search(
            q, k=k, where=filters, min_score=min_score, paths=path or None, parse=parse
        )
        parsed = index.parse_query(q) if parse else None
        extra = {"parsed": parsed.to_dict()} if parsed is not None else {}
        return {"results": [hit.to_dict() for hit in hits], **extra}

    @app.post(
        "/api/similar",
        dependencies=[*guard, _only("k", "where", "min_score")],
        responses=_errors(400, 401, 413, 415, 422),
        openapi_extra=_UPLOAD_SCHEMA,
    )
    async def similar(
        request: Request,
        k: Annotated[int, Query(ge=1, le=200)] = 10,
        where: Where = None,
        min_score: Floor = None,
    ) -> dict[str, Any]:
        """Reverse image search: the request body is the query image's bytes."""
        data = await _read_upload(request)
        hits = index.search_by_image(
            data, k=k, where=index.parse_where(where or []), min_score=min_score
        )
        return {"results": [hit.to_dict() for hit in hits]}

    @app.get(
        "/api/items/{item_id}/similar",
        dependencies=[*guard, _only("k")],
        responses=_errors(401, 404, 422),
    )
    def similar_to_item(
        item_id: Annotated[str, Path(pattern=_ITEM_ID)],
        k: Annotated[int, Query(ge=1, le=200)] = 10,
    ) -> dict[str, Any]:
        """Other products like a product (or its photo); else items that look like the item."""
        try:
            if index.products_of(index.get([item_id])):
                hits = index.similar_products(item_id, k=k)
            else:
                hits = index.similar_to(item_id, k=k)
        except InputError:
            raise HTTPException(404, f"no item {item_id!r} with an image vector") from None
        return {"results": [hit.to_dict() for hit in hits]}

    def ask(body: AskBody) -> dict[str, Any]:
        """Retrieve, then answer with citations (offline extractive answer without a model)."""
        answer = index.ask(
            body.question,
            k=body.k,
            model=body.model,
            where=index.parse_where(body.where),
            images_only=body.images_only,
        )
        return dict(answer.to_dict())

    ask.__annotations__["body"] = _ask_body(index)  # the models this server offers
    app.post(
        "/api/ask",
        dependencies=[*guard, _only()],
        responses={**_errors(400, 401, 409, 422), 502: {"model": AnswerErrorBody}},
    )(ask)

    @app.get(
        "/api/thumbs/{key}",
        dependencies=[*guard, _only()],
        response_class=Response,
        responses={200: {"content": {"image/jpeg": {}}}, **_errors(401, 404, 422)},
    )
    def thumb(key: Annotated[str, Path(pattern=_HASH)]) -> Response:
        """A thumbnail JPEG from the index's blob store, by content hash."""
        data = index.thumbnail(key)
        if data is None:
            raise HTTPException(404, "no such thumbnail")
        headers = {"Cache-Control": "public, max-age=31536000, immutable"}  # content-addressed
        return Response(data, media_type="image/jpeg", headers=headers)

    _report_routes(app, index, guard)
    return app


#: A report file by name: only these names, served from the index's latest report.
ReportFile = Literal["report.html", "report.md", "metrics.png", "worst.png", "per_query.jsonl"]


def _report_routes(app: Any, index: Index, guard: list[Any]) -> None:
    """The index's latest ``mmrag eval --report``: what it is, and its files by fixed name."""

    def latest() -> LatestReport:
        found = latest_report(index.path)
        if found is None:
            raise HTTPException(404, "no evaluation report: run `mmrag eval QUERIES --report`")
        return found

    @app.get("/api/report", dependencies=[*guard, _only()], responses=_errors(401, 404))
    def report() -> dict[str, Any]:
        """The latest evaluation report of this index: its title, time and files."""
        return {**latest().to_dict(), "url": "/api/report/report.html"}

    kinds: dict[str, Any] = {kind: {} for kind in dict.fromkeys(MEDIA_TYPES.values())}
    media = {"content": kinds}

    @app.get(
        "/api/report/{name}",
        dependencies=[*guard, _only()],
        response_class=Response,
        responses={200: media, **_errors(401, 404, 422)},
    )
    def report_file(name: ReportFile) -> Response:
        """A file of the latest evaluation report, by name (never a path)."""
        path = latest().directory / name
        try:
            data = path.read_bytes()
        except OSError:
            raise HTTPException(404, f"the latest report has no {name}") from None
        return Response(data, media_type=MEDIA_TYPES[name], headers={"Cache-Control": "no-cache"})
