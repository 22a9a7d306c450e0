"""Transformer model shapes as data: the packaged ``models.yaml`` (and a user's models file) validated into
:class:`Model` objects. Its own module so that the HuggingFace reader (:mod:`attnforge.workloads.hf`) and the
workload front door (``attnforge.workloads``) both build on it without importing each other."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict, PositiveInt, ValidationError, model_validator

from attnforge.sim.specs.errors import SpecError, from_pydantic, parse_yaml, read_yaml


class Model(BaseModel):
    """One transformer's per-layer shape, validated at load.

    ``kv_heads`` is how many K/V heads the layer keeps (grouped-query attention: ``heads / kv_heads`` query heads
    share one K/V head; 1 is multi-query attention; the default, ``heads``, is plain multi-head attention). Most
    families project d_model onto heads x d_head, so that equality is checked to catch typos; a model whose config
    sets the head width on its own (HuggingFace ``head_dim``, as in Gemma) says ``d_head_independent: true``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = ""
    layers: PositiveInt
    heads: PositiveInt
    kv_heads: PositiveInt  # filled with ``heads`` when not given (see _default_kv_heads)
    d_model: PositiveInt
    d_head: PositiveInt
    d_ff: PositiveInt
    causal: bool = False
    d_head_independent: bool = False
    #: Names of this model on the HuggingFace hub, so ``hf:NAME`` finds the packaged preset without a download.
    hf_names: tuple[str, ...] = ()
    source: str = ""

    @model_validator(mode="before")
    @classmethod
    def _default_kv_heads(cls, data: object) -> object:
        """Multi-head attention unless told otherwise: every head has its own K and V."""
        if isinstance(data, dict) and data.get("kv_heads") is None and "heads" in data:
            return {**data, "kv_heads": data["heads"]}
        return data

    @model_validator(mode="after")
    def _heads_fit(self) -> Model:
        if not self.d_head_independent and self.heads * self.d_head != self.d_model:
            raise ValueError(f"heads * d_head = {self.heads * self.d_head} must equal d_model = {self.d_model} "
                             "(set d_head_independent: true if the model sets its head width apart)")
        if self.heads % self.kv_heads:
            raise ValueError(f"kv_heads = {self.kv_heads} must divide heads = {self.heads}")
        return self

    @property
    def group(self) -> int:
        """Query heads per K/V head (1 for multi-head attention, ``heads`` for multi-query attention)."""
        return self.heads // self.kv_heads


def _read_yaml(path: Path | str, what: str) -> object:
    if hasattr(path, "read_text") and not isinstance(path, Path):  # a packaged resource
        return parse_yaml(path.read_text(), what, str(path))  # type: ignore[union-attr]
    return read_yaml(path, what)


def load_models(path: Path | str | None = None) -> dict[str, Model]:
    """Load and validate a models file (the packaged one by default)."""
    if path is None:
        return dict(_packaged_models())
    return _parse_models(_read_yaml(path, "workload file"), str(path))


@lru_cache(maxsize=1)
def _packaged_models() -> tuple[tuple[str, Model], ...]:
    src = resources.files("attnforge.workloads").joinpath("models.yaml")
    return tuple(_parse_models(_read_yaml(src, "workload file"), "models.yaml").items())  # type: ignore[arg-type]


def _parse_models(raw: object, origin: str) -> dict[str, Model]:
    if not isinstance(raw, dict) or not raw:
        raise SpecError("workload file", f"{origin} must map model names to their shapes")
    models: dict[str, Model] = {}
    for name, body in raw.items():
        if not isinstance(body, dict):
            raise SpecError(f"{name}", "must be a mapping of layers, heads, d_model, d_head, d_ff")
        fields = {str(k): v for k, v in body.items()}
        given = fields.pop("name", str(name))
        if str(given) != str(name):
            raise SpecError(f"{name}.name", f"{given!r} differs from the model's key {str(name)!r} (the key is its name)")
        try:
            models[str(name)] = Model(name=str(name), **fields)
        except ValidationError as exc:
            raise from_pydantic(exc, prefix=str(name)) from None
        except (ValueError, TypeError) as exc:
            raise SpecError(str(name), str(exc).splitlines()[0]) from None
    return models


def model_names() -> list[str]:
    return list(load_models())
