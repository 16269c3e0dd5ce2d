"""What the pipeline asks of the providers: which models exist, are these parameters valid, and
the provider objects themselves.

The model table is `providers.catalog.MODELS`; the provider table is `PROVIDERS` below. Both are
explicit: nothing registers itself on import.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
from pydantic import ValidationError

from providers.aliyun.client import DashScopeProvider
from providers.base import ModelParameters, ModelSpec, Provider
from providers.catalog import MODELS
from providers.http_provider import HttpProvider
from providers.messages import explain
from providers.settings import ProviderSettings
from providers.zhipuai.client import BigModelProvider

PROVIDERS: Mapping[str, type[HttpProvider]] = {
    "aliyun": DashScopeProvider,
    "zhipuai": BigModelProvider,
}

__all__ = [
    "MODELS",
    "PROVIDERS",
    "InvalidParameters",
    "UnknownModel",
    "create_providers",
    "get_model",
    "validate_parameters",
]


class UnknownModel(ValueError):
    """The request names a model we do not have (contract code `unknown_model`)."""


class InvalidParameters(ValueError):
    """The parameters do not fit the model's schema (contract code `invalid_parameters`).

    `problems` has one line per bad parameter; the message joins them with "; ".
    """

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def get_model(name: str) -> ModelSpec:
    spec = MODELS.get(name) if isinstance(name, str) else None
    if spec is None:
        known = ", ".join(MODELS)
        raise UnknownModel(f"unknown model {name!r}; supported models: {known}")
    return spec


def validate_parameters(model: str, raw: Mapping[str, Any]) -> ModelParameters:
    """The model's parameters, validated and normalised (compatibility forms rewritten)."""
    schema = get_model(model).parameters
    try:
        return schema.model_validate(raw)
    except ValidationError as error:
        raise InvalidParameters(explain(model, schema, error)) from None


def create_providers(
    settings: ProviderSettings | Mapping[str, Any] | object,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
) -> dict[str, Provider]:
    """One provider per vendor that has an API key configured, keyed by provider name.

    `settings` is a `ProviderSettings`, a mapping of the environment variables it reads
    (`os.environ`), or a settings object with those names as lower-case attributes
    (`ProviderSettings.from_env`). `transport` replaces the network (tests).
    """
    if not isinstance(settings, ProviderSettings):
        settings = ProviderSettings.from_env(settings)
    built: dict[str, Provider] = {}
    for name, cls in PROVIDERS.items():
        vendor = settings.vendor(name)
        if vendor.api_keys:
            built[name] = cls.from_settings(vendor, settings, transport=transport)
    return built
