"""URL fetching is safe by default: scheme, address, size, type and redirect rules."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from mmrag.config import Settings
from mmrag.errors import FetchError
from mmrag.ingest.fetch import check_url, fetch_url

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108020000009077"
    "53de0000000c4944415408d763f8cfc000000301010018dd8db00000000049454e44ae426082"
)


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        routes = {
            "/pic.png": (200, "image/png", PNG),
            "/page.html": (200, "text/html", b"<html></html>"),
            "/big.png": (200, "image/png", b"\0" * 5000),
            "/missing.png": (404, "text/plain", b"no"),
        }
        if self.path.startswith("/hop"):
            n = int(self.path[4:] or 0)
            self.send_response(302)
            self.send_header("Location", f"/hop{n + 1}" if n < 9 else "/pic.png")
            self.end_headers()
            return
        if self.path == "/to-public":
            self.send_response(302)
            self.send_header("Location", "http://127.0.0.2/pic.png")
            self.end_headers()
            return
        status, ctype, body = routes.get(self.path, (404, "text/plain", b""))
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def allow(**kw: object) -> Settings:
    return Settings(allow_private_urls=True, **kw)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/a.png", "gopher://x/"])
def test_non_http_schemes_are_refused(url: str) -> None:
    with pytest.raises(FetchError, match="only http and https"):
        check_url(url, Settings())


@pytest.mark.parametrize(
    "address", ["127.0.0.1", "10.1.2.3", "192.168.0.9", "169.254.169.254", "::1", "fd00::1"]
)
def test_private_and_link_local_addresses_are_refused_by_default(address: str) -> None:
    with pytest.raises(FetchError, match="non-public address"):
        check_url("http://photos.example/a.jpg", Settings(), resolve=lambda h, p: [address])


def test_public_address_passes() -> None:
    check_url("https://photos.example/a.jpg", Settings(), resolve=lambda h, p: ["93.184.216.34"])


def test_loopback_server_is_refused_unless_allowed(server: str) -> None:
    with pytest.raises(FetchError, match="non-public"):
        fetch_url(f"{server}/pic.png", Settings())
    data, ctype = fetch_url(f"{server}/pic.png", allow())
    assert data == PNG and ctype == "image/png"


def test_wrong_content_type_is_refused(server: str) -> None:
    with pytest.raises(FetchError, match="text/html"):
        fetch_url(f"{server}/page.html", allow())


def test_size_cap(server: str) -> None:
    with pytest.raises(FetchError, match="too large"):
        fetch_url(f"{server}/big.png", allow(url_max_bytes=1000))


def test_http_errors_name_the_status(server: str) -> None:
    with pytest.raises(FetchError, match="HTTP 404"):
        fetch_url(f"{server}/missing.png", allow())


def test_redirects_are_followed_up_to_the_limit(server: str) -> None:
    data, _ = fetch_url(f"{server}/hop5", allow(url_max_redirects=5))
    assert data == PNG
    with pytest.raises(FetchError, match="redirects"):
        fetch_url(f"{server}/hop0", allow(url_max_redirects=3))


def test_every_redirect_hop_is_checked() -> None:
    calls: list[str] = []

    def resolve(host: str, port: int) -> list[str]:
        calls.append(host)
        return ["93.184.216.34"] if host == "photos.example" else ["169.254.169.254"]

    def hop(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"location": "http://metadata.example/latest"})

    # The first hop is public; the redirect target resolves to the cloud metadata address.
    with pytest.raises(FetchError, match=r"non-public address 169\.254\.169\.254"):
        fetch_url(
            "http://photos.example/a.png",
            Settings(),
            resolve=resolve,
            transport=httpx.MockTransport(hop),
        )
    assert calls == ["photos.example", "metadata.example"]


def test_the_request_goes_to_the_checked_address_not_a_second_dns_answer() -> None:
    answers = iter([["93.184.216.34"], ["127.0.0.1"]])  # a rebinding DNS: public, then loopback
    seen: list[httpx.Request] = []

    def serve(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=PNG, headers={"content-type": "image/png"})

    data, _ = fetch_url(
        "https://photos.example:8443/a.png",
        Settings(),
        resolve=lambda host, port: next(answers),
        transport=httpx.MockTransport(serve),
    )
    assert data == PNG and len(seen) == 1
    request = seen[0]
    assert request.url.host == "93.184.216.34" and request.url.port == 8443
    assert request.headers["host"] == "photos.example:8443"
    assert request.extensions["sni_hostname"] == "photos.example"  # TLS checks the name


def test_timeout_is_reported() -> None:
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts the connection but never answers
    port = listener.getsockname()[1]
    try:
        with pytest.raises(FetchError, match="timed out"):
            fetch_url(f"http://127.0.0.1:{port}/slow.png", allow(url_timeout=0.3))
    finally:
        listener.close()
