"""Building blocks of the per-model parameter schemas, shared by both vendors.

Every schema is strict: a value must have its documented JSON type (a boolean is `true`/`false`,
never "yes" or 1) and one of its documented values. The contract's compatibility forms for
requests written for the original service are applied before validation, in `_compat` hooks, so
that the normalised dump validates to the same instance again.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import ConfigDict, Field, model_validator
from pydantic.types import JsonValue

from providers.base import ModelParameters

# The only integer parameters of all 13 models; they also accept a numeric string ("5").
INTEGER_PARAMETERS = ("duration", "seed", "fps")
_NUMERIC_STRING = re.compile(r"-?[0-9]{1,10}")


class ParameterProblem(ValueError):
    """A rule between parameters was broken. `template` names `{model}` and the `values`, which
    are shown with `show_value` (never used as a template themselves)."""

    def __init__(self, field: str, template: str, **values: Any) -> None:
        super().__init__(template)
        self.field = field
        self.template = template
        self.values = values

    def render(self, model: str) -> str:
        shown = {name: show_value(value) for name, value in self.values.items()}
        return self.template.format(model=model, **shown)


@dataclass(frozen=True, slots=True)
class Allowed:
    """`Annotated` marker: how to describe the allowed values when they are not a plain list."""

    text: str


def optional(
    vendor_default: JsonValue = None, *, required: str | None = None, **constraints: Any
) -> Any:
    """An optional parameter. `vendor_default` is what the vendor uses when it is omitted (for the
    docs and `resolution_label`): an omitted parameter is not sent. `required` notes a
    conditional requirement ("one of prompt, image_url")."""
    extra: dict[str, JsonValue] = {}
    if vendor_default is not None:
        extra["vendor_default"] = vendor_default
    if required is not None:
        extra["required_note"] = required
    return Field(None, json_schema_extra=extra or None, **constraints)


def check_url(value: str, schemes: tuple[str, ...]) -> str:
    """Accept `http(s)://host...`, `oss://...` or `data:image/...;base64,...` as `schemes` allow."""
    if "http" in schemes and re.match(r"https?://[^\s/?#]+", value) and not re.search(r"\s", value):
        return value
    if "oss" in schemes and re.fullmatch(r"oss://\S+", value):
        return value
    if "data" in schemes and re.match(r"data:image/[\w.+-]+;base64,[A-Za-z0-9+/=]", value):
        return value
    raise ValueError("not an accepted image URL")


def show_value(value: Any) -> str:
    """A request value for a message: short, quoted like the contract's examples, never a whole
    prompt or data URI."""
    if isinstance(value, str):
        return f"'{value}'" if len(value) <= 60 else f"a string of {len(value)} characters"
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else f"a {type(value).__name__} value"


class VendorParameters(ModelParameters):
    """Strict types plus the compatibility forms every model accepts."""

    model_config = ConfigDict(strict=True)

    notes: ClassVar[tuple[str, ...]] = ()  # extra lines for the README table

    @model_validator(mode="before")
    @classmethod
    def _apply_compat(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data  # pydantic reports "not an object"
        return cls._compat(dict(data))

    def _given_or_default(self, name: str) -> str | None:
        """The value of `name`, or the vendor's documented default when it was omitted."""
        value = getattr(self, name)
        if value is None:
            extra = type(self).model_fields[name].json_schema_extra
            value = extra.get("vendor_default") if isinstance(extra, dict) else None
        return None if value is None else str(value)

    @classmethod
    def _compat(cls, data: dict[str, Any]) -> dict[str, Any]:
        """Rewrite compatibility forms into documented ones; subclasses extend it."""
        for name in INTEGER_PARAMETERS:
            value = data.get(name)
            if isinstance(value, str) and _NUMERIC_STRING.fullmatch(value):
                data[name] = int(value)
        return data
