"""Safe URL fetching: http(s) only, no private addresses, bounded size, time and redirects.

data, content_type = fetch_url("https://example.com/cat.jpg", settings)
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit, urlunsplit

from ..config import Settings
from ..errors import FetchError

if TYPE_CHECKING:
    import httpx

__all__ = ["ALLOWED_TYPES", "check_url", "fetch_url"]

#: Content types we index from URLs (checked on the response header).
ALLOWED_TYPES = (
    "image/",
    "application/pdf",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/octet-stream",
)

Resolver = Callable[[str, int], list[str]]


def _resolve(host: str, port: int) -> list[str]:
    """Every address the host resolves to (a refused one anywhere refuses the URL)."""
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise FetchError(host, f"cannot resolve host: {exc.strerror}") from None
    return [str(info[4][0]) for info in infos]


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_url(url: str, settings: Settings, resolve: Resolver = _resolve) -> str | None:
    """Raise FetchError unless ``url`` is http(s) and (by default) resolves to public addresses.

    Returns the checked address to connect to (None when private addresses are allowed):
    connecting by name would resolve again, and a second answer may differ (DNS rebinding).
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise FetchError(url, f"scheme '{parts.scheme}' refused: only http and https are fetched")
    if not parts.hostname:
        raise FetchError(url, "no host in URL")
    if settings.allow_private_urls:
        return None
    port = parts.port or (443 if parts.scheme == "https" else 80)
    addresses = resolve(parts.hostname, port)
    for address in addresses:
        if not _is_public(address):
            raise FetchError(
                url,
                f"refused: {parts.hostname} resolves to non-public address {address} "
                "(set MMRAG_ALLOW_PRIVATE_URLS=1 to allow)",
            )
    if not addresses:
        raise FetchError(url, f"cannot resolve host {parts.hostname}")
    return addresses[0]


def _pinned(url: str, address: str | None) -> tuple[str, dict[str, str], dict[str, str]]:
    """The request for ``url`` sent to the checked ``address``: (URL, headers, extensions).

    The Host header keeps the name for the server, and TLS is verified against the name
    (``sni_hostname``), so only the address lookup is skipped.
    """
    if address is None:
        return url, {}, {}
    parts = urlsplit(url)
    host = f"[{address}]" if ":" in address else address
    netloc = host + (f":{parts.port}" if parts.port else "")
    extensions = {"sni_hostname": parts.hostname or ""} if parts.scheme == "https" else {}
    return (
        urlunsplit(parts._replace(netloc=netloc)),
        {"Host": parts.netloc.rpartition("@")[2]},
        extensions,
    )


def fetch_url(
    url: str,
    settings: Settings,
    *,
    transport: httpx.BaseTransport | None = None,
    resolve: Resolver = _resolve,
) -> tuple[bytes, str]:
    """Download ``url`` under the safety rules; return (bytes, content type).

    Redirects are followed by hand so every hop is checked against the same rules, and
    each request goes to the address that was checked, not to a second DNS answer.
    """
    import httpx  # here, not at the top: a query process never downloads (0.06 s)

    current = url
    with httpx.Client(
        timeout=settings.url_timeout, follow_redirects=False, transport=transport
    ) as client:
        for _ in range(settings.url_max_redirects + 1):
            target, headers, extensions = _pinned(current, check_url(current, settings, resolve))
            try:
                with client.stream(
                    "GET", target, headers=headers, extensions=extensions
                ) as response:
                    if response.is_redirect:
                        location = response.headers.get("location")
                        if not location:
                            raise FetchError(url, "redirect without a location")
                        current = urljoin(current, location)
                        continue
                    return _read_body(url, response, settings)
            except httpx.TimeoutException:
                raise FetchError(url, f"timed out after {settings.url_timeout:g} s") from None
            except httpx.HTTPError as exc:
                raise FetchError(url, f"download failed: {type(exc).__name__}: {exc}") from None
    raise FetchError(url, f"more than {settings.url_max_redirects} redirects")


def _read_body(url: str, response: httpx.Response, settings: Settings) -> tuple[bytes, str]:
    if response.status_code >= 400:
        raise FetchError(url, f"HTTP {response.status_code}")
    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if not content_type.startswith(ALLOWED_TYPES):
        raise FetchError(url, f"content type '{content_type or 'missing'}' is not indexable")
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > settings.url_max_bytes:
        raise FetchError(url, f"too large: {declared} bytes > {settings.url_max_bytes}")
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > settings.url_max_bytes:
            raise FetchError(url, f"too large: over {settings.url_max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks), content_type
