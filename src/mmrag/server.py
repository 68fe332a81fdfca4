"""The HTTP API (FastAPI, OpenAPI docs at /docs) and the small web page, over one Index.

app = create_app(mmrag.open("my-index"))
uvicorn.run(app, host="127.0.0.1", port=8000)
"""

from __future__ import annotations

from importlib import resources
from typing import Annotated, Any

from pydantic import BaseModel, Field

from .app import Index
from .errors import ConfigError, DependencyError, InputError, MmragError

try:  # FastAPI resolves endpoint annotations at module level, so import it here
    from fastapi import FastAPI, HTTPException, Query, Request
    from fastapi.responses import HTMLResponse, JSONResponse, Response
except ImportError as exc:  # pragma: no cover - the 'server' extra is missing
    raise DependencyError("fastapi", "server", "The HTTP server") from exc

__all__ = ["AskBody", "create_app"]

#: A query image upload larger than this is refused before decoding.
MAX_UPLOAD_BYTES = 20_000_000


class AskBody(BaseModel):
    """A question for /api/ask."""

    question: str = Field(min_length=1)
    k: int = Field(default=5, ge=1, le=50)
    model: str | None = None
    where: list[str] = Field(default_factory=list)
    images_only: bool = False


def create_app(index: Index) -> Any:
    """A FastAPI app serving ``index``: /api/search, /api/similar, /api/ask, /api/stats, /."""
    app = FastAPI(title="mmrag", version="0.1.0", summary="Multimodal retrieval and answers")
    page = resources.files("mmrag.web").joinpath("index.html").read_text("utf-8")

    @app.exception_handler(MmragError)
    async def _mmrag_error(_: Request, exc: MmragError) -> JSONResponse:
        status = 400 if isinstance(exc, (ConfigError, InputError)) else 500
        return JSONResponse({"error": type(exc).__name__, "message": str(exc)}, status_code=status)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def home() -> str:
        return page

    @app.get("/api/stats")
    def stats() -> dict[str, Any]:
        """What the index holds."""
        return index.stats()

    @app.get("/api/search")
    def search(
        q: str = Query(min_length=1),
        k: int = Query(default=10, ge=1, le=200),
        where: Annotated[list[str] | None, Query()] = None,
        min_score: float | None = None,
        path: Annotated[list[str] | None, Query()] = None,
        parse: bool = True,
    ) -> dict[str, Any]:
        """Text query -> images and text, fused; on a product index prices/colours parsed."""
        filters = index.parse_where(where or [])
        hits = index.search(
            q, k=k, where=filters, min_score=min_score, paths=path or None, parse=parse
        )
        parsed = index.parse_query(q) if parse else None
        extra = {"parsed": parsed.to_dict()} if parsed is not None else {}
        return {"results": [hit.to_dict() for hit in hits], **extra}

    @app.post("/api/similar")
    async def similar(
        request: Request,
        k: int = Query(default=10, ge=1, le=200),
        where: Annotated[list[str] | None, Query()] = None,
        min_score: float | None = None,
    ) -> dict[str, Any]:
        """Reverse image search: the request body is the query image's bytes."""
        data = await request.body()
        if len(data) > MAX_UPLOAD_BYTES:
            raise HTTPException(413, f"query image over {MAX_UPLOAD_BYTES} bytes")
        hits = index.search_by_image(
            data, k=k, where=index.parse_where(where or []), min_score=min_score
        )
        return {"results": [hit.to_dict() for hit in hits]}

    @app.get("/api/items/{item_id}/similar")
    def similar_to_item(item_id: str, k: int = Query(default=10, ge=1, le=200)) -> dict[str, Any]:
        """Other products like a product (or its photo); else items that look like the item."""
        try:
            if index.products_of(index.get([item_id])):
                hits = index.similar_products(item_id, k=k)
            else:
                hits = index.similar_to(item_id, k=k)
        except InputError:
            raise HTTPException(404, f"no item {item_id!r} with an image vector") from None
        return {"results": [hit.to_dict() for hit in hits]}

    @app.post("/api/ask")
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

    @app.get("/api/thumbs/{key}", response_class=Response)
    def thumb(key: str) -> Response:
        """A thumbnail JPEG from the index's blob store."""
        data = index.thumbnail(key)
        if data is None:
            raise HTTPException(404, "no such thumbnail")
        headers = {"Cache-Control": "public, max-age=31536000, immutable"}  # content-addressed
        return Response(data, media_type="image/jpeg", headers=headers)

    return app
