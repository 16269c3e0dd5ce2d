"""The models the service runs and their parameters, checked here before anything is sent.

The catalogue is `models.json`, generated from the service's own parameter classes
(`python client/contract_sync.py`): each model's parameters described for people and as a JSON
Schema (draft 2020-12). `validate_parameters` checks parameters against that schema, after the
same compatibility rewrites the service applies, and reports problems in the service's words:
each names the parameter and what the model allows. The service checks again on arrival; a
test keeps both verdicts the same.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Any

from jsonschema import Draft202012Validator, ValidationError
from jsonschema.validators import extend

from video_client.errors import InvalidParameters, UnknownModel

_NUMERIC_STRING = re.compile(r"-?[0-9]{1,10}")

# JSON integers are Python ints, never floats or booleans: the service's schemas are strict...
_TYPES = Draft202012Validator.TYPE_CHECKER.redefine(
    "integer", lambda _, value: isinstance(value, int) and not isinstance(value, bool)
)
_TYPE = Draft202012Validator.VALIDATORS["type"]


def _type(validator: Any, types: Any, instance: Any, schema: Mapping[str, Any]) -> Any:
    """...except that a value from a fixed list may be written 5.0 for 5 (pydantic's `Literal`
    compares by equality; `const` and `enum` then check the value itself)."""
    if (
        types == "integer"
        and isinstance(instance, float)
        and ("const" in schema or "enum" in schema)
    ):
        return
    yield from _TYPE(validator, types, instance, schema)


_Validator = extend(Draft202012Validator, {"type": _type}, type_checker=_TYPES)


@dataclass(frozen=True, slots=True)
class ParameterInfo:
    """One parameter of a model, described for people."""

    name: str
    type: str  # "string", "integer", "boolean", "list of string"
    allowed: str  # "1280*720, 720*1280" or "1 to 800 characters"
    default: str | None  # what the vendor uses when it is not given
    required: str  # "yes", "no" or a condition ("one of prompt, image_url")


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """One model the service runs."""

    name: str
    provider: str  # "aliyun", "zhipuai"
    kind: str  # "text to video, fast"
    typical_duration_s: float  # the vendor's usual generation time
    parameters: tuple[ParameterInfo, ...]
    notes: tuple[str, ...]
    service_checks: tuple[str, ...]  # what only the service checks (e.g. data: URI images)
    json_schema: Mapping[str, Any] = field(repr=False)
    compat: Mapping[str, Any] = field(repr=False)

    def parameter(self, name: str) -> ParameterInfo | None:
        return next((p for p in self.parameters if p.name == name), None)

    def validate(self, parameters: Mapping[str, Any]) -> None:
        """Raise `InvalidParameters` (one line per problem) unless the service would accept them."""
        problems = _problems(self, parameters)
        if problems:
            raise InvalidParameters(problems)


def _load() -> Mapping[str, ModelInfo]:
    text = resources.files("video_client").joinpath("models.json").read_text("utf-8")
    models = {}
    for entry in json.loads(text)["models"]:
        models[entry["name"]] = ModelInfo(
            name=entry["name"],
            provider=entry["provider"],
            kind=entry["kind"],
            typical_duration_s=float(entry["typical_duration_s"]),
            parameters=tuple(ParameterInfo(**p) for p in entry["parameters"]),
            notes=tuple(entry["notes"]),
            service_checks=tuple(entry.get("checked_by_the_service_only", ())),
            json_schema=entry["json_schema"],
            compat=entry["compat"],
        )
    return MappingProxyType(models)


MODELS: Mapping[str, ModelInfo] = _load()


def get_model(name: str) -> ModelInfo:
    """The model called `name`, or `UnknownModel` listing the supported ones."""
    model = MODELS.get(name) if isinstance(name, str) else None
    if model is None:
        raise UnknownModel(f"unknown model {name!r}; supported models: {', '.join(MODELS)}")
    return model


def validate_parameters(model: str, parameters: Mapping[str, Any]) -> None:
    """Raise `UnknownModel` or `InvalidParameters` unless the service would accept them."""
    get_model(model).validate(parameters)


def show_value(value: Any) -> str:
    """A value as the service shows it in a message: short, never a whole prompt or data URI."""
    if isinstance(value, str):
        return f"'{value}'" if len(value) <= 60 else f"a string of {len(value)} characters"
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else f"a {type(value).__name__} value"


@cache
def _validator(name: str) -> Draft202012Validator:
    return _Validator(MODELS[name].json_schema)


class _Problem(Exception):
    pass


def _problems(model: ModelInfo, parameters: Mapping[str, Any]) -> list[str]:
    if not isinstance(parameters, Mapping):
        return [f"parameters: must be a JSON object, got {show_value(parameters)}"]
    try:
        data = _compat(model, dict(parameters))
    except _Problem as exc:
        return [str(exc)]
    errors = list(_validator(model.name).iter_errors(data))
    fields = [e for e in errors if not e.schema_path or e.schema_path[0] != "allOf"]
    if fields:
        return _field_problems(model, data, fields)
    rules = sorted(e.schema_path[1] for e in errors)  # the service stops at the first rule
    if rules:
        problem = model.json_schema["allOf"][rules[0]]["x-problem"]
        return [f"parameters.{problem['field']}: {problem['message'].format(model=model.name)}"]
    return []


def _compat(model: ModelInfo, data: dict[str, Any]) -> dict[str, Any]:
    """The service's compatibility rewrites (providers/params.py and providers/aliyun/params.py),
    applied to a copy for checking only: what is sent is what the caller gave."""
    compat = model.compat
    for name in compat["integer_strings"]:
        value = data.get(name)
        if isinstance(value, str) and _NUMERIC_STRING.fullmatch(value):
            data[name] = int(value)
    seed = data.get("seed")
    if compat["random_seed"] and type(seed) is int and seed == -1:
        del data["seed"]
    sizes: Mapping[str, str] | None = compat.get("resolution_sizes")
    if sizes is not None:
        resolution = data.pop("resolution", None)
        if resolution is not None:
            data["size"] = _size_for(model, sizes, resolution, data.get("size"))
    return data


def _size_for(model: ModelInfo, sizes: Mapping[str, str], resolution: Any, size: Any) -> Any:
    if not isinstance(resolution, str) or resolution not in sizes:
        allowed = ", ".join(sizes)
        raise _Problem(
            f"parameters.resolution: {show_value(resolution)} is not allowed for {model.name}; "
            f"allowed: {allowed} (or give size)"
        )
    if size is None:
        return sizes[resolution]
    if isinstance(size, str) and model.compat["size_classes"].get(size, size) == resolution:
        return size
    raise _Problem(
        f"parameters.resolution: {show_value(resolution)} contradicts size {show_value(size)}; "
        "give only one of them"
    )


def _field_problems(
    model: ModelInfo, data: Mapping[str, Any], errors: list[ValidationError]
) -> list[str]:
    names = [p.name for p in model.parameters]
    found: dict[str, tuple[tuple[int, int], str]] = {}

    def add(where: str, rank: tuple[int, int], text: str) -> None:
        if where not in found:  # one problem per parameter, as the service reports them
            found[where] = (rank, f"{where}: {text}")

    for error in errors:
        path = list(error.absolute_path)
        if not path:
            if error.validator == "additionalProperties":
                for position, name in enumerate(data):
                    if name not in names:
                        add(
                            f"parameters.{name}",
                            (len(names), position),
                            f"unknown parameter for {model.name}; "
                            f"allowed parameters: {', '.join(names)}",
                        )
            elif error.validator == "required":
                for name in error.validator_value:
                    if name not in data:
                        add(
                            f"parameters.{name}",
                            (names.index(name), 0),
                            f"required for {model.name}; allowed: {_allowed(model, name)}",
                        )
            continue
        name = str(path[0])
        where = f"parameters.{name}" + "".join(f"[{i}]" for i in path[1:])
        rank = (names.index(name) if name in names else len(names), 0)
        add(
            where,
            rank,
            f"{show_value(error.instance)} is not allowed for {model.name}; "
            f"allowed: {_allowed(model, name)}",
        )
    return [text for _, text in sorted(found.values())]


def _allowed(model: ModelInfo, name: str) -> str:
    parameter = model.parameter(name)
    return parameter.allowed if parameter else "any"
