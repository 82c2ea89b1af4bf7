"""README.md's result tables are generated from the committed results/ folders (tools/readme_tables.py)."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _tool():
    spec = importlib.util.spec_from_file_location("readme_tables", ROOT / "tools" / "readme_tables.py")
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(mod)
    return mod


def test_the_readme_tables_match_the_committed_results() -> None:
    tool = _tool()
    text = (ROOT / "README.md").read_text()
    assert tool.MARKER.search(text), "README.md has no generated tables"
    assert tool.render(text, ROOT) == text, "run: python tools/readme_tables.py"


def test_a_table_follows_its_results_file(tmp_path: Path) -> None:
    tool = _tool()
    src = ROOT / "results" / "lcon-quick"
    shutil.copytree(src, tmp_path / "results" / "lcon-quick")
    readme = ("intro\n<!-- BEGIN results/lcon-quick (tools/readme_tables.py) -->\nSTALE TABLE\n"
              "<!-- END results/lcon-quick -->\nend\n")  # fmt: skip
    first = tool.render(readme, tmp_path)
    assert "STALE TABLE" not in first and first.startswith("intro\n") and first.endswith("end\n")
    res = json.loads((src / "results.json").read_text())
    row = next(r for r in res["rows"] if r["train"] == "lcon" and r["test"] == "clean")
    row["accuracy"] = 0.123456
    (tmp_path / "results" / "lcon-quick" / "results.json").write_text(json.dumps(res))
    assert tool.render(first, tmp_path) != first  # an edited result changes the table
    shutil.rmtree(tmp_path / "results" / "lcon-quick")
    with pytest.raises(SystemExit, match="is missing"):
        tool.render(readme, tmp_path)
