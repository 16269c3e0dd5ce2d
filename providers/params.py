"""Building blocks of the per-model parameter schemas, shared by both vendors.

Every schema is strict: a value must have its documented JSON type (a boolean is `true`/`false`,
never "yes" or 1) and one of its documented values. The contract's compatibility forms for
requests written for the original service are applied before validation, in `_compat` hooks, so
that the normalised dump validates to the same instance again.

Images given as `data:` URIs are checked too, since their bytes are in the request: length
(the vendor's file limit or 700 KiB of text, whichever is smaller, so that a request fits in one
Kafka message; all of a request's `data:` URIs together too), the declared media type, and,
read from the image's header (`providers.images`), its format, pixel size, aspect ratio and
alpha channel as the model's documentation allows (`ImageRule`). Images given by URL are the
vendor's to fetch and check: validation never downloads anything.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from pydantic import ConfigDict, Field, model_validator
from pydantic.types import JsonValue

from providers.base import ModelParameters
from providers.images import ImageInfo, NotAnImage, inspect

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


# A data: URI longer than this is refused whatever the vendor allows: the request must fit in one
# Kafka message (1 MiB by default) with its other fields. All of a request's data: URIs together
# are held to it as well.
DATA_URI_MAX_CHARS = 700 * 1024

MEDIA_TYPES = {
    "png": ("image/png",),
    "jpeg": ("image/jpeg", "image/jpg"),
    "webp": ("image/webp",),
    "bmp": ("image/bmp", "image/x-ms-bmp"),
}
_DATA_URI = re.compile(r"data:(?P<type>[\w.+/-]+);base64,(?P<data>.*)", re.DOTALL)


@dataclass(frozen=True, slots=True)
class ImageRule:
    """What a model's documentation allows of an input image (checked on data: URIs)."""

    formats: tuple[str, ...]  # of providers.images.FORMATS
    max_bytes: int  # the vendor's file limit
    min_side: int = 1  # pixels, each of width and height
    max_side: int | None = None
    max_ratio: float | None = None  # long side / short side, e.g. 4 for "1:4 to 4:1"
    alpha: bool = True  # False: "PNG (no alpha)"

    def describe(self) -> str:
        """The rule in words, for the README table and messages."""
        names = {"png": "PNG", "jpeg": "JPEG", "webp": "WebP", "bmp": "BMP"}
        kinds = [
            names[f] + (" without alpha" if f == "png" and not self.alpha else "")
            for f in self.formats
        ]
        parts = [" or ".join([", ".join(kinds[:-1]), kinds[-1]] if len(kinds) > 1 else kinds)]
        if self.max_side is not None:
            parts.append(f"{self.min_side} to {self.max_side} px a side")
        elif self.min_side > 1:
            parts.append(f"at least {self.min_side}x{self.min_side} px")
        if self.max_ratio is not None:
            parts.append(f"aspect ratio 1:{self.max_ratio:g} to {self.max_ratio:g}:1")
        kib = self.uri_limit() // 1024
        parts.append(f"file up to {_size(self.max_bytes)}, as a data: URI up to {kib} KiB")
        return "; ".join(parts)

    def uri_limit(self) -> int:
        """The longest data: URI accepted: the vendor's file limit in base64, or 700 KiB."""
        return min(DATA_URI_MAX_CHARS, 4 * -(-self.max_bytes // 3) + len("data:image/jpeg;base64,"))

    def check(self, where: str, url: str) -> ImageInfo | None:
        """The image of a data: URI when it fits the rule (None for other URLs), else raises
        ParameterProblem naming `where` ("img_url", "image_url[1]")."""
        if not url.startswith("data:"):
            return None
        limit = self.uri_limit()
        if len(url) > limit:
            raise ParameterProblem(
                where,
                f"a data: URI of {len(url)} characters is too long for {{model}}; at most {limit} "
                f"({DATA_URI_MAX_CHARS // 1024} KiB, so that the request fits in one Kafka "
                f"message; the vendor's file limit is {_size(self.max_bytes)}): give a URL instead",
            )
        match = _DATA_URI.fullmatch(url)
        declared = match.group("type").lower() if match else ""
        allowed_types = [t for f in self.formats for t in MEDIA_TYPES[f]]
        if declared not in allowed_types:
            shown = (declared or url[5:35]).replace("{", "{{").replace("}", "}}")
            raise ParameterProblem(
                where,
                f"data:{shown} is not an image type {{model}} accepts; allowed: "
                + ", ".join(allowed_types),
            )
        assert match is not None
        try:
            data = base64.b64decode(match.group("data"), validate=True)
            info = inspect(data)
        except (binascii.Error, ValueError) as exc:
            why = str(exc) if isinstance(exc, NotAnImage) else "not valid base64"
            raise ParameterProblem(where, f"the data: URI's content is {why}") from None
        if declared not in MEDIA_TYPES[info.format]:
            raise ParameterProblem(
                where,
                f"the data: URI declares {declared} but holds a {info.format.upper()} image",
            )
        self._check_image(where, info)
        return info

    def _check_image(self, where: str, info: ImageInfo) -> None:
        size = f"the image is {info.width}x{info.height} px"
        if info.format not in self.formats:
            raise ParameterProblem(
                where,
                f"{info.format.upper()} images are not accepted by {{model}}; allowed: "
                + self.describe(),
            )
        if info.format == "png" and info.alpha and not self.alpha:
            raise ParameterProblem(
                where,
                "the PNG image has an alpha channel (transparency); {model} accepts PNG "
                "without alpha only",
            )
        low, high = min(info.width, info.height), max(info.width, info.height)
        if low < self.min_side or (self.max_side is not None and high > self.max_side):
            bound = (
                f"from {self.min_side} to {self.max_side}"
                if self.max_side
                else f"of at least {self.min_side}"
            )
            raise ParameterProblem(where, f"{size}; {{model}} needs a width and height {bound} px")
        if self.max_ratio is not None and high > self.max_ratio * low:
            raise ParameterProblem(
                where,
                f"{size} ({high / low:.2f}:1); {{model}} needs an aspect ratio from "
                f"1:{self.max_ratio:g} to {self.max_ratio:g}:1",
            )


MB = 1024 * 1024


def _size(n: int) -> str:
    return f"{n // (1024 * 1024)} MB" if n >= 1024 * 1024 else f"{n // 1024} KiB"


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
    # Image parameters (string or list of strings) and what the model allows of them.
    image_rules: ClassVar[Mapping[str, ImageRule]] = {}

    @model_validator(mode="before")
    @classmethod
    def _apply_compat(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data  # pydantic reports "not an object"
        return cls._compat(dict(data))

    @model_validator(mode="after")
    def _check_images(self) -> Self:
        """The data: URI images, each against its rule, then all of them against the limit."""
        total = 0
        for where, url, rule in self._images():
            if rule.check(where, url) is not None:
                total += len(url)
        if total > DATA_URI_MAX_CHARS:
            first = next(name for name, url, _ in self._images() if url.startswith("data:"))
            raise ParameterProblem(
                first.partition("[")[0],
                f"the data: URIs of this request have {total} characters together; at most "
                f"{DATA_URI_MAX_CHARS} ({DATA_URI_MAX_CHARS // 1024} KiB, so that the request "
                "fits in one Kafka message): give URLs instead",
            )
        return self

    def _images(self) -> Iterator[tuple[str, str, ImageRule]]:
        """(where, url, rule) of every image given: "img_url", "image_url[1]"."""
        for name, rule in self.image_rules.items():
            value = getattr(self, name)
            if isinstance(value, str):
                yield name, value, rule
            elif isinstance(value, list):
                for i, url in enumerate(value):
                    yield f"{name}[{i}]", url, rule

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
