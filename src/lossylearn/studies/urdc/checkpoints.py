"""Model folders of a urdc study: each module's weights next to the configuration that made them.

A folder is reused only when its ``config.json`` equals the configuration asked for, so a changed
setting retrains rather than reloading stale weights.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from lossylearn.studies.common import write_json

__all__ = ["save_modules", "try_load"]


def save_modules(directory: Path, modules: dict[str, nn.Module], config: dict[str, object]) -> None:
    """Each module's weights as ``<name>.pt`` and ``config`` as JSON, in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, module in modules.items():
        torch.save(module.state_dict(), directory / f"{name}.pt")
    write_json(directory / "config.json", config, indent=2)


def try_load(directory: Path, modules: dict[str, nn.Module], config: dict[str, object]) -> bool:
    """Load weights saved with an identical configuration; False when absent or different."""
    cfg_path = directory / "config.json"
    if not cfg_path.is_file() or not all((directory / f"{n}.pt").is_file() for n in modules):
        return False
    if json.loads(cfg_path.read_text()) != json.loads(json.dumps(config)):
        return False
    for name, module in modules.items():
        module.load_state_dict(
            torch.load(directory / f"{name}.pt", map_location="cpu", weights_only=True)
        )
    return True
