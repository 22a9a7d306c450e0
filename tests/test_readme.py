"""The Python examples of the README and docs/python-api.md run as written, so they never rot."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", ROOT / "docs" / "python-api.md"]
BLOCKS = [pytest.param(block, id=f"{doc.name}-{i}")
          for doc in DOCS for i, block in enumerate(re.findall(r"```python\n(.*?)```", doc.read_text(), re.S))]


def test_every_doc_has_a_python_block() -> None:
    assert {b.id.rsplit("-", 1)[0] for b in BLOCKS} == {d.name for d in DOCS}


@pytest.mark.parametrize("block", BLOCKS)
def test_readme_python_block_runs(block: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    scope: dict[str, object] = {}
    exec(compile(block, "README.md", "exec"), scope)  # noqa: S102 - our own documentation
