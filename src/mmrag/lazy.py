"""Import plumbing that keeps a one-shot query from paying for code it never runs.

A query process lives for a second or two, so import time is most of its wall time.
``defer_init`` lets a third-party package's submodules be imported without running
the package's own ``__init__`` (which may import everything it has); the ``__init__``
runs in full the first time anyone asks the package for a name it does not yet hold::

    defer_init("lance_namespace_urllib3_client")  # before `import lancedb`
    import lancedb                                  # 0.6 s less: its REST API classes wait

Nothing here changes what a program can use, only when it is loaded.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
import types
from typing import Any

__all__ = ["defer_init"]


def defer_init(package: str) -> bool:
    """Register ``package`` with its ``__init__`` deferred; returns whether it was deferred.

    A package already imported, absent, or not a package is left alone (False).
    """
    if package in sys.modules:
        return False
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return False
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        return False
    module = importlib.util.module_from_spec(spec)
    lock = threading.Lock()
    loader = spec.loader

    def complete(name: str) -> Any:
        """Run the real ``__init__`` into the module, then answer ``name`` from it."""
        with lock:
            if "__getattr__" in module.__dict__:
                del module.__dict__["__getattr__"]
                loader.exec_module(module)
        try:
            return module.__dict__[name]
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None

    module.__getattr__ = complete  # type: ignore[method-assign]
    sys.modules[package] = module
    _deferred[package] = module
    return True


#: Packages deferred in this process (for tests and for finishing them explicitly).
_deferred: dict[str, types.ModuleType] = {}
