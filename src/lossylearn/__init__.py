"""lossylearn: lossy compression of machine-learning data that keeps what learning needs.

The main entry points mirror the command line::

    import lossylearn
    manifest = lossylearn.compress(dataset="mnist", noise="gaussian", psnr=20, codec="jpeg", out="S")
    store = lossylearn.open_store("S")
    image, label = store[0]
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lossylearn.version import __version__

__all__ = ["__version__", "compress", "open_store", "Manifest", "Store"]

if TYPE_CHECKING:
    from lossylearn.pipeline import compress
    from lossylearn.store import Manifest, Store, open_store


def __getattr__(name: str) -> Any:
    # Lazy so that `import lossylearn` stays cheap (no torch, no pyarrow until needed).
    if name == "compress":
        from lossylearn.pipeline import compress

        return compress
    if name in ("open_store", "Manifest", "Store"):
        import lossylearn.store as store

        return getattr(store, name)
    raise AttributeError(f"module 'lossylearn' has no attribute {name!r}")
