"""Human descriptions of schema fields, read from the schemas themselves.

Rejection messages and the README table both come from here, so neither can drift from what the
validation actually accepts.
"""

from __future__ import annotations

import types
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic.fields import FieldInfo

from providers.base import ModelParameters
from providers.params import Allowed


@dataclass(frozen=True, slots=True)
class FieldDoc:
    name: str
    type: str  # "string", "integer", "boolean", "list of string"
    allowed: str  # "1280*720, 720*1280" or "1 to 800 characters"
    default: str | None  # the vendor's default when omitted
    required: str  # "yes", "no" or a condition


def describe_schema(schema: type[ModelParameters]) -> list[FieldDoc]:
    return [describe_field(schema, name) for name in schema.model_fields]


def describe_field(schema: type[ModelParameters], name: str) -> FieldDoc:
    info = schema.model_fields[name]
    kind, allowed = _describe(info.annotation, info.metadata)
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    default = extra.get("vendor_default")
    note = extra.get("required_note")
    required = "yes" if info.is_required() else str(note) if note else "no"
    return FieldDoc(name, kind, allowed, None if default is None else _show(default), required)


def _describe(annotation: Any, metadata: Sequence[Any] = ()) -> tuple[str, str]:
    """(type, allowed values) of an annotation; `metadata` are constraints from `Field(...)`."""
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        inner = [arg for arg in get_args(annotation) if arg is not type(None)]
        return _describe(inner[0], metadata)
    if origin is Annotated:
        base, *more = get_args(annotation)
        return _describe(base, [*metadata, *_flatten(more)])
    marker = next((m.text for m in metadata if isinstance(m, Allowed)), None)
    if origin is Literal:
        values = get_args(annotation)
        kind = "string" if isinstance(values[0], str) else "integer"
        return kind, marker or ", ".join(_show(v) for v in values)
    if origin is list:
        item_kind, item_allowed = _describe(get_args(annotation)[0])
        items = _range(metadata, "item", "items")
        return f"list of {item_kind}", marker or f"{items}; each {item_allowed}"
    if annotation is bool:
        return "boolean", marker or "true, false"
    if annotation is int:
        return "integer", marker or _range(metadata, "", "")
    return "string", marker or _range(metadata, "character", "characters")


def _flatten(metadata: Iterable[Any]) -> list[Any]:
    """`Annotated[x, Field(...)]` nests its constraints in a FieldInfo; lift them out."""
    flat: list[Any] = []
    for item in metadata:
        flat.extend(item.metadata if isinstance(item, FieldInfo) else [item])
    return flat


def _range(metadata: Sequence[Any], one: str, many: str) -> str:
    """Text like "1 to 800 characters", "0 to 2147483647" or "at most 3 items"."""
    low = high = None
    for item in metadata:
        for attr in ("min_length", "ge"):
            if getattr(item, attr, None) is not None:
                low = getattr(item, attr)
        for attr in ("max_length", "le"):
            if getattr(item, attr, None) is not None:
                high = getattr(item, attr)

    def count(n: int) -> str:
        return f"{n} {one if n == 1 else many}".strip()

    if low is not None and high is not None:
        return count(low) if low == high else f"{low} to {count(high)}"
    if high is not None:
        return f"at most {count(high)}"
    if low is not None:
        return f"at least {count(low)}"
    return "any"


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
