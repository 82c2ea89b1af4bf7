"""Human views of a store: a Rich summary of its manifest and a PNG grid of stored samples."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image
from rich.console import Console
from rich.table import Table

from lossylearn.errors import LossylearnError
from lossylearn.store.manifest import Manifest
from lossylearn.store.owner import CleanStats

if TYPE_CHECKING:
    from lossylearn.store.reader import Store


def _db(v: float | None) -> str:
    return "inf dB (identical)" if v is None else f"{v:.2f} dB"


def print_manifest(
    manifest: Manifest,
    console: Console,
    *,
    directory: Path | str | None = None,
    clean: CleanStats | None = None,
) -> None:
    """Print the essentials of a manifest: data, noise, privacy, codec, sizes, distortions, and the
    owner's clean-side figures when ``clean`` is given."""
    m, s, c, nz, p = manifest, manifest.stats, manifest.codec, manifest.noise, manifest.privacy
    h, w, ch = m.image_shape
    title = f"lossylearn store {directory}" if directory else "lossylearn store"
    t = Table(title=title, show_header=False, title_justify="left")
    t.add_column(style="bold")
    t.add_column()
    t.add_row(
        "images",
        f"{m.n_images} x {h}x{w}x{ch}  ({m.dataset.get('name')}, {m.dataset.get('split')})",
    )
    scale = f"sigma {nz['sigma']:.4g}" if "sigma" in nz else f"b {nz['b']:.4g}"
    t.add_row(
        "noise",
        f"{nz['kind']}{' (discrete)' if nz['discrete'] else ''}, {scale}, {nz['range_handling']}, "
        f"H(N) {nz['entropy_bits']:.3f} bits/value",
    )
    if manifest.has_guarantee:
        privacy = (
            f"({p['epsilon']:.4g}, {p['delta']:.3g})-DP per {p['unit']}, {p['mechanism']}, "
            f"{p['norm']} sensitivity {p['sensitivity']:.4g}"
        )
    else:
        privacy = f"[yellow]no guarantee[/] (seeded noise), {p.get('mechanism')}"
    t.add_row("privacy", privacy)
    quality = (
        c["quality"] if c["quality"] is not None else f"per image ({len(c['qualities'])} values)"
    )
    reached = "[green]reached[/]" if c["target_reached"] else "[yellow]not reached[/]"
    t.add_row(
        "codec",
        f"{c['name']} quality {quality}; target {c['target_metric'].upper()} "
        f"{c['target_distortion']:.4g}, got {c['achieved_distortion']:.4g}: {reached}",
    )
    t.add_row(
        "size",
        f"{s.bits_per_pixel:.3f} bits/pixel stored ({s.stored_bytes} bytes, {s.shared_header_bytes} shared); "
        f"{s.container_bits_per_pixel:.3f} as standalone files",
    )
    t.add_row(
        "distortion",
        f"to noisy: MSE {s.distortion_to_noisy.mse:.4g}, MAE {s.distortion_to_noisy.mae:.4g}",
    )
    if clean is not None:
        t.add_row(
            "vs clean",
            f"PSNR noisy {_db(clean.psnr_noisy_db)}, stored {_db(clean.psnr_stored_db)}; noise left "
            f"after range handling: MSE {clean.mse_noisy_to_clean:.4g}, MAE "
            f"{clean.mae_noisy_to_clean:.4g}  [dim](owner file, not in the store)[/]",
        )
    signed = "signed (HMAC-SHA256)" if "hmac_sha256" in m.integrity else "not signed"
    t.add_row(
        "integrity",
        f"manifest digest checked; {signed}. The digest detects damage and hand edits, not a "
        "forger who recomputes it"
        + ("" if "hmac_sha256" in m.integrity else "; a signature would"),
    )
    console.print(t)
    if p.get("statement"):
        console.print(p["statement"], highlight=False)


def print_audit_link(link: dict[str, Any], console: Console) -> None:
    """One line pointing to the store's latest audit (``lossylearn audit``; owner side only)."""
    auc = link.get("membership_auc")
    console.print(
        f"audit: top-1 re-identification {float(link['top1']):.2%} ({link.get('best_attack')}, pool "
        f"{link.get('pool_size')}, chance {float(link['chance_top1']):.3%}); leakage bound "
        f"{float(link['leakage_bits_per_pixel']):.4f} bits/pixel"
        + (f"; membership AUC {float(auc):.3f}" if auc is not None else "")
        + f"; {link.get('audit')}/audit.html [dim](derived from clean data, not in the store)[/]",
        highlight=False,
    )


def sample_grid(store: Store, path: Path | str, *, n: int = 64, scale: int = 2) -> Path:
    """Write a PNG grid of the first ``n`` stored images (decoded), ``scale``x enlarged."""
    n = max(1, min(n, len(store)))
    h, w, c = store.image_shape
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    canvas = np.full((rows * (h + 2), cols * (w + 2), c), 255, dtype=np.uint8)
    for i in range(n):
        image, _ = store[i]
        r, q = divmod(i, cols)
        canvas[r * (h + 2) + 1 : r * (h + 2) + 1 + h, q * (w + 2) + 1 : q * (w + 2) + 1 + w] = image
    mode = "L" if c == 1 else "RGB"
    img = Image.fromarray(canvas[..., 0] if c == 1 else canvas, mode=mode)
    img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    path = Path(path)
    if path.is_dir():
        raise LossylearnError(
            f"{path}: is a folder; give the sample grid a file name ending in .png"
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        img.save(path, format="PNG")
    except OSError as exc:
        raise LossylearnError(f"{path}: cannot write the sample grid ({exc})") from None
    return path
