"""Writes the client distribution's generated files from the service's sources.

    .venv/bin/python client/contract_sync.py          # write them
    .venv/bin/python client/contract_sync.py --check  # exit 1 when one is stale

- `video_client/schemas/*.py`: the contract's event models, copied from `schemas/` with their
  imports renamed to `video_client.schemas`. The client installs without the service and under
  its own name, so a producer's own `schemas` package never collides with ours.
- `video_client/models.json`: every model with its parameters described for people and their
  JSON Schema, made from the parameter classes in `providers/` (which producers cannot import:
  `providers` pulls httpx and the vendors' clients). What the classes check in Python beyond what
  pydantic writes into a JSON Schema is added here, explicitly: the image-URL patterns, the rules
  between parameters (`allOf`, each with the service's message) and the compatibility forms
  (`compat`). An unknown validator or compatibility hook stops the generation, so a new rule in
  `providers/` cannot be silently missing on the client side.

tests/client/test_contract_sync.py fails when a generated file is stale, and checks that the
client and the service accept and reject the same parameters with the same messages.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import re
import sys
import textwrap
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

CLIENT = Path(__file__).resolve().parent
ROOT = CLIENT.parent
PACKAGE = CLIENT / "video_client"
SCHEMA_FILES = ("__init__.py", "errors.py", "events.py", "status.py")
GENERATED = "# Generated from {source} by `python client/contract_sync.py`: do not edit.\n"

# `check_url` in providers/params.py, per vendor, as JSON Schema patterns (ECMA-262 and Python
# `re` alike). The negative lookahead stands for "no whitespace anywhere" without `$`, which
# would also match before a final newline.
_HTTP = r"(?![\s\S]*\s)https?://[^\s/?#]+"
_OSS = r"(?![\s\S]*\s)oss://\S"
_DATA = r"data:image/[\w.+-]+;base64,[A-Za-z0-9+/=]"
URL_PATTERNS = {
    "providers.aliyun.params._dashscope_url": f"^(?:{_HTTP}|{_OSS}|{_DATA})",
    "providers.zhipuai.params._bigmodel_url": f"^(?:{_HTTP}|{_DATA})",
}


def _given(name: str) -> dict[str, Any]:
    """JSON Schema: `name` is present and not null (null means "not given" in the service)."""
    return {"required": [name], "properties": {name: {"not": {"type": "null"}}}}


# The parameter classes' `mode="after"` model validators, as JSON Schema rules. `field` and
# `message` are the service's ParameterProblem for that rule (`{model}` is the model's name).
# `source` fingerprints the validator's code (`_fingerprint`): when it changes, generating stops
# until its rules here are checked again (tests/client/test_contract_sync.py compares verdicts).
RULES: dict[str, dict[str, Any]] = {
    "providers.aliyun.params.KF2VPlusParameters._last_frame_or_template": {
        "source": "9eb74b94528b",
        "rules": [
            {
                "anyOf": [_given("last_frame_url"), _given("template")],
                "x-problem": {
                    "field": "last_frame_url",
                    "message": "required for {model} unless template is given",
                },
            },
        ],
    },
    "providers.zhipuai.params.CogVideoXParameters._prompt_or_image": {
        "source": "da9c91434e40",
        "rules": [
            {
                "anyOf": [_given("prompt"), _given("image_url")],
                "x-problem": {
                    "field": "prompt",
                    "message": "{model} needs prompt, image_url or both",
                },
            },
        ],
    },
}

# Validators whose checks JSON Schema cannot express: the service alone makes them.
SERVICE_ONLY = {
    "providers.params.VendorParameters._check_images": (
        "images given as data: URIs (their format, pixel size, alpha, length)"
    ),
    "providers.zhipuai.params._ViduStartEnd._similar_frames": (
        "start and end frames given as data: URIs of similar resolution"
    ),
}

# The compatibility hooks (`_compat`) the client knows how to apply (video_client/models.py).
KNOWN_COMPAT = {
    "providers.params.VendorParameters._compat",
    "providers.aliyun.params.DashScopeParameters._compat",
    "providers.aliyun.params._TextToVideo._compat",
}


def _fingerprint(function: Any) -> str:
    source = textwrap.dedent(inspect.getsource(getattr(function, "__func__", function)))
    return hashlib.sha256(source.encode()).hexdigest()[:12]


def _qualname(function: Any) -> str:
    function = getattr(function, "__func__", function)
    return f"{function.__module__}.{function.__qualname__}"


def _validators(annotation: Any) -> Iterator[Callable[..., Any]]:
    """The AfterValidator functions anywhere in an annotation."""
    origin = get_origin(annotation)
    if origin is Annotated:
        base, *metadata = get_args(annotation)
        yield from _validators(base)
        for item in metadata:
            function = getattr(item, "func", None)
            if function is not None:
                yield function
    elif origin in (Union, types.UnionType, list):
        for arg in get_args(annotation):
            yield from _validators(arg)


def _string_schemas(schema: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The string-typed (sub)schemas of one property: itself, its anyOf branches, its items."""
    if schema.get("type") == "string":
        yield schema
    for branch in schema.get("anyOf", ()):
        yield from _string_schemas(branch)
    if isinstance(schema.get("items"), dict):
        yield from _string_schemas(schema["items"])


def _anchor_patterns(schema: Any) -> None:
    """A final `$` becomes "end of text": in Python's `re.search` (jsonschema's), `$` also matches
    before a final newline, which pydantic's patterns do not accept."""
    if isinstance(schema, dict):
        pattern = schema.get("pattern")
        if isinstance(pattern, str) and pattern.endswith("$") and not pattern.endswith("\\$"):
            schema["pattern"] = pattern[:-1] + r"(?![\s\S])"
        for value in schema.values():
            _anchor_patterns(value)
    elif isinstance(schema, list):
        for value in schema:
            _anchor_patterns(value)


def model_entry(spec: Any) -> dict[str, Any]:
    from providers.aliyun.params import DashScopeParameters, _TextToVideo, size_class
    from providers.describe import describe_schema
    from providers.params import INTEGER_PARAMETERS

    cls = spec.parameters
    schema = cls.model_json_schema()
    for name, field in cls.model_fields.items():
        # A required field's Annotated metadata is lifted into `field.metadata` by pydantic.
        lifted = [item.func for item in field.metadata if getattr(item, "func", None)]
        for function in [*_validators(field.annotation), *lifted]:
            key = _qualname(function)
            if key not in URL_PATTERNS:
                raise SystemExit(f"{cls.__name__}.{name}: no client-side form of {key}; add it")
            for sub in _string_schemas(schema["properties"][name]):
                sub["pattern"] = URL_PATTERNS[key]
    rules: list[dict[str, Any]] = []
    service_only: list[str] = []
    for decorator in cls.__pydantic_decorators__.model_validators.values():
        key = _qualname(decorator.func)
        if decorator.info.mode == "before":
            continue
        if key in SERVICE_ONLY:
            service_only.append(SERVICE_ONLY[key])
            continue
        if key not in RULES:
            raise SystemExit(f"{cls.__name__}: no client-side rule for {key}; add it to RULES")
        if RULES[key]["source"] != _fingerprint(decorator.func):
            raise SystemExit(
                f"{key} changed (fingerprint {_fingerprint(decorator.func)}): check its rules in "
                "RULES (client/contract_sync.py) against it, then update their `source`"
            )
        rules += RULES[key]["rules"]
    if rules:
        schema["allOf"] = rules
    _anchor_patterns(schema)
    for klass in cls.__mro__:
        if "_compat" in vars(klass) and _qualname(vars(klass)["_compat"]) not in KNOWN_COMPAT:
            raise SystemExit(f"{klass.__name__}._compat is new: teach video_client.models")
    compat: dict[str, Any] = {
        "integer_strings": [name for name in INTEGER_PARAMETERS if name in cls.model_fields],
        "random_seed": issubclass(cls, DashScopeParameters),
    }
    if issubclass(cls, _TextToVideo):
        sizes = get_args(get_args(cls.model_fields["size"].annotation)[0])
        flat = [s for group in sizes for s in (get_args(group) or (group,))]
        compat["resolution_sizes"] = dict(cls.resolution_sizes)
        compat["size_classes"] = {size: size_class(size) for size in flat}
    return {
        "name": spec.name,
        "provider": spec.provider,
        "kind": spec.kind,
        "typical_duration_s": spec.typical_duration_s,
        "parameters": [
            {
                "name": doc.name,
                "type": doc.type,
                "allowed": doc.allowed,
                "default": doc.default,
                "required": doc.required,
            }
            for doc in describe_schema(cls)
        ],
        "notes": list(getattr(cls, "notes", ())),
        "checked_by_the_service_only": service_only,
        "compat": compat,
        "json_schema": schema,
    }


def models_json() -> str:
    from providers.catalog import MODELS

    document = {
        "about": "Generated by `python client/contract_sync.py` from providers/: do not edit.",
        "models": [model_entry(spec) for spec in MODELS.values()],
    }
    return json.dumps(document, indent=1, ensure_ascii=False) + "\n"


def schema_copy(name: str) -> str:
    text = (ROOT / "schemas" / name).read_text()
    text = re.sub(r"\bfrom schemas(\.| import)", r"from video_client.schemas\1", text)
    text = re.sub(r"^import schemas\b", "import video_client.schemas", text, flags=re.M)
    return GENERATED.format(source=f"schemas/{name}") + text


def expected_files() -> dict[Path, str]:
    """Every generated file and the content it must have."""
    files = {PACKAGE / "schemas" / name: schema_copy(name) for name in SCHEMA_FILES}
    files[PACKAGE / "models.json"] = models_json()
    return files


def stale_files() -> list[Path]:
    return [
        path
        for path, text in expected_files().items()
        if not path.exists() or path.read_text() != text
    ]


def main(argv: list[str]) -> int:
    if "--check" in argv:
        stale = stale_files()
        for path in stale:
            print(f"stale: {path.relative_to(ROOT)}", file=sys.stderr)
        if stale:
            print("run: .venv/bin/python client/contract_sync.py", file=sys.stderr)
        return 1 if stale else 0
    for path, text in expected_files().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main(sys.argv[1:]))
