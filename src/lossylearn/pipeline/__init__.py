"""The LCoN pipeline: a typed plan -> noise -> matched codec -> store, on a local process pool."""

from lossylearn.pipeline.plan import CodecChoice, CompressPlan, DataSource, RunOptions
from lossylearn.pipeline.runner import compress
from lossylearn.pipeline.targets import TargetPolicy
from lossylearn.pipeline.transform import LconBatch, lcon_transform

__all__ = [
    "CodecChoice",
    "CompressPlan",
    "DataSource",
    "LconBatch",
    "RunOptions",
    "TargetPolicy",
    "compress",
    "lcon_transform",
]
