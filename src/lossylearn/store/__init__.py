"""The store: Parquet shards of coded images, shared headers, and a manifest committed last."""

from lossylearn.store.layout import MANIFEST, RUN_STATE, STORE_FORMAT
from lossylearn.store.manifest import DistortionStats, Manifest, StoreStats, read_manifest
from lossylearn.store.reader import Store, open_store

__all__ = [
    "MANIFEST",
    "RUN_STATE",
    "STORE_FORMAT",
    "DistortionStats",
    "Manifest",
    "Store",
    "StoreStats",
    "open_store",
    "read_manifest",
]
