"""docs/arch-schema.md is generated from the pydantic arch models and must equal a fresh generation."""

from __future__ import annotations

from pathlib import Path

from attnforge.sim.specs.arch import FAMILIES
from attnforge.sim.specs.schema import MODELS, render, type_name

DOC = Path(__file__).resolve().parent.parent / "docs" / "arch-schema.md"


def test_committed_schema_is_current() -> None:
    assert DOC.read_text() == render(), (
        "docs/arch-schema.md is stale: run `python -m attnforge.sim.specs.schema > docs/arch-schema.md`")


def test_every_family_and_field_is_documented() -> None:
    text = render()
    for name in FAMILIES:
        assert f"## {FAMILIES.get(name).__name__}" in text
    for model in MODELS:
        for field in model.model_fields:
            assert f"| `{field}` |" in text, f"{model.__name__}.{field}"


def test_type_names() -> None:
    from typing import Annotated, Literal

    from pydantic import Field

    assert type_name(dict[str, Annotated[float, Field(ge=0)]]) == "dict[str, float (>= 0)]"
    assert type_name(Literal["cascade"]) == "'cascade'"
    assert type_name(int | None) == "int | None"
