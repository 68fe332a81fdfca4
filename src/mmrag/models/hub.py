"""Where a model comes from and runs: a local directory or a hub id, the hub reachable, the device.

Shared by every torch-backed encoder (CLIP, the text embedder, the page encoders)::

    looks_like_path("openai/clip-vit-base-patch32")   # False: a hub id
    looks_like_path("./models/clip")                   # True: a directory
    hub_reachable()                                    # False on a machine without network
    resolve_device("auto")                             # "cuda" when available, else "cpu"
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["hub_reachable", "looks_like_path", "resolve_device"]


def resolve_device(device: str) -> str:
    """'auto' -> 'cuda' when available, else 'cpu'; anything else is used as given."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def looks_like_path(model: str) -> bool:
    """A hub id is 'name' or 'org/name'; anything else is meant as a directory."""
    return (
        model.startswith(("/", ".", "~"))
        or model.count("/") > 1
        or "\\" in model
        or Path(model).expanduser().exists()
    )


_HUB_REACHABLE: bool | None = None


def hub_reachable() -> bool:
    """Whether the model hub's host resolves; remembered for the process.

    Without this, a machine with no network waits through huggingface_hub's
    retries (tens of seconds) before the load fails; a failed DNS lookup
    answers at once, so we treat it as "offline" and say so in the error.
    """
    global _HUB_REACHABLE
    if _HUB_REACHABLE is None:
        import socket
        from urllib.parse import urlsplit

        from huggingface_hub import constants

        host = urlsplit(constants.ENDPOINT).hostname or "huggingface.co"
        try:
            socket.getaddrinfo(host, 443)
            _HUB_REACHABLE = True
        except OSError:
            _HUB_REACHABLE = False
    return _HUB_REACHABLE
