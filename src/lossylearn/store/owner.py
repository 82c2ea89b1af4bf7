"""The data owner's file: everything a run derives from the clean images, kept out of the store.

``compress --out S`` writes ``S.owner.json`` beside the store folder, never inside it. It holds:

- the fingerprint of the clean input (SHA-256 of the images and labels), so that ``--resume``
  refuses to finish a run on other data;
- the seed of a seeded run (the store itself carries none: knowing the seed regenerates the noise);
- per-shard error sums against the clean images while the run is under way, and at the end the
  clean-side figures: PSNR of the noisy and stored images against the clean ones, and the noise
  left after clipping (MSE, MAE).

A store folder can be shipped as it is; this file must stay with the data owner. It is written
atomically like every store file and marked with its own format so that lossylearn only ever
replaces a file it wrote.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lossylearn.errors import StoreError
from lossylearn.imaging import psnr_db
from lossylearn.store.layout import atomic_write_json, read_json_file

OWNER_FORMAT = "lossylearn-owner/1"
OWNER_WARNING = (
    "Derived from the clean images: keep this file with the data owner and never ship it with "
    "the store (it holds the seed of a seeded run, a fingerprint of the clean data and "
    "distortions measured against it)."
)


def owner_path(store_dir: str | Path) -> Path:
    """Where the owner file of the store at ``store_dir`` lives: ``<store>.owner.json`` beside it."""
    d = Path(store_dir)
    return d.parent / f"{d.resolve().name}.owner.json"


@dataclass(frozen=True)
class CleanStats:
    """Clean-side figures of a whole store (means over every stored value)."""

    psnr_noisy_db: float | None
    """PSNR of the noisy images against the clean ones (None if they are equal)."""
    psnr_stored_db: float | None
    """PSNR of the stored reconstructions against the clean images."""
    mse_noisy_to_clean: float
    mse_stored_to_clean: float
    mae_noisy_to_clean: float
    """Mean absolute noise that survived range handling (clipping shrinks it on dark pixels)."""

    @classmethod
    def from_sums(cls, sums: list[dict[str, Any]]) -> CleanStats:
        """Aggregate per-chunk :class:`~lossylearn.pipeline.chunks.CleanSums` records."""
        n = sum(int(c["n_values"]) for c in sums)
        if n <= 0:
            raise StoreError("no clean-side sums to aggregate")
        mse_noisy = sum(c["sq_err_noisy_to_clean"] for c in sums) / n
        mse_stored = sum(c["sq_err_stored_to_clean"] for c in sums) / n
        return cls(
            psnr_noisy_db=psnr_db(mse_noisy),
            psnr_stored_db=psnr_db(mse_stored),
            mse_noisy_to_clean=mse_noisy,
            mse_stored_to_clean=mse_stored,
            mae_noisy_to_clean=sum(c["abs_err_noisy_to_clean"] for c in sums) / n,
        )


@dataclass
class OwnerFile:
    """The owner file of one run (see the module docstring)."""

    path: Path
    run_id: str
    """The random id of the run (``manifest.run.id``): ties this file to its store."""
    data_sha256: str
    seed: int | None
    chunks: dict[int, dict[str, Any]] = field(default_factory=dict)
    stats: CleanStats | None = None

    def save(self) -> None:
        """Write the file atomically."""
        atomic_write_json(
            self.path,
            {
                "format": OWNER_FORMAT,
                "warning": OWNER_WARNING,
                "run_id": self.run_id,
                "data_sha256": self.data_sha256,
                "seed": self.seed,
                "chunks": {str(k): v for k, v in sorted(self.chunks.items())},
                "stats": asdict(self.stats) if self.stats is not None else None,
            },
        )

    @classmethod
    def load(cls, path: Path) -> OwnerFile:
        """Read an owner file; StoreError if it is not one lossylearn wrote."""
        d = read_json_file(path, "owner file")
        if not isinstance(d, dict) or d.get("format") != OWNER_FORMAT:
            raise StoreError(f"{path}: is not a lossylearn owner file")
        try:
            stats = d.get("stats")
            return cls(
                path=path,
                run_id=str(d["run_id"]),
                data_sha256=str(d["data_sha256"]),
                seed=d.get("seed"),
                chunks={int(k): dict(v) for k, v in dict(d.get("chunks") or {}).items()},
                stats=CleanStats(**stats) if isinstance(stats, dict) else None,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise StoreError(f"{path}: owner file is malformed ({exc})") from None


def is_owner_file(path: Path) -> bool:
    """Whether ``path`` is an owner file lossylearn wrote (so lossylearn may replace it)."""
    try:
        OwnerFile.load(path)
    except StoreError:
        return False
    return True


def read_clean_stats(store_dir: str | Path) -> CleanStats:
    """The clean-side figures of the store at ``store_dir``, from its owner file."""
    from lossylearn.store.manifest import read_manifest

    path = owner_path(store_dir)
    owner = OwnerFile.load(path)
    if read_manifest(store_dir).run.get("id") != owner.run_id:
        raise StoreError(f"{path}: belongs to another run than the store at {store_dir}")
    if owner.stats is None:
        raise StoreError(f"{path}: the run that wrote it has not finished")
    return owner.stats
