"""The LCoN pipeline: noise -> matched codec -> store, on a local process pool."""

from lossylearn.pipeline.runner import compress
from lossylearn.pipeline.transform import LconBatch, lcon_transform

__all__ = ["LconBatch", "compress", "lcon_transform"]
