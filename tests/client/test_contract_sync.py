"""The client's generated files are current; the client judges parameters as the service does."""

from __future__ import annotations

import subprocess
import sys

import pytest

import contract_sync
from providers.registry import InvalidParameters as ServiceInvalid
from providers.registry import validate_parameters as service_validate
from tests.client.corpus import cases
from video_client import MODELS, InvalidParameters, UnknownModel, get_model, validate_parameters


def test_generated_files_are_current() -> None:
    stale = [str(p.relative_to(contract_sync.ROOT)) for p in contract_sync.stale_files()]
    assert not stale, f"stale: {stale}; run `.venv/bin/python client/contract_sync.py`"


def test_the_catalogue_has_every_model_of_the_service() -> None:
    from providers.catalog import MODELS as SERVICE_MODELS

    assert list(MODELS) == list(SERVICE_MODELS)
    for name, spec in SERVICE_MODELS.items():
        assert MODELS[name].provider == spec.provider
        assert [p.name for p in MODELS[name].parameters] == list(spec.parameters.model_fields)


def _service_only(parameters: dict[str, object]) -> bool:
    """Images given as data: URIs are read (format, pixels, alpha) by the service alone."""
    values = [
        v for value in parameters.values() for v in (value if isinstance(value, list) else [value])
    ]
    return any(isinstance(v, str) and v.startswith("data:") for v in values)


def _lenient_literal(parameters: dict[str, object]) -> bool:
    """The service takes 0 for a parameter whose only allowed value is false (pydantic's Literal
    compares by equality); the client holds to the documented `false`."""
    return any(type(value) is int and value in (0, 1) for value in parameters.values())


def test_client_and_service_give_the_same_verdicts_and_messages() -> None:
    checked = refused = 0
    for model, parameters in cases():
        try:
            service_validate(model, parameters)
            expected: list[str] = []
        except ServiceInvalid as exc:
            expected = sorted(exc.problems)
        try:
            validate_parameters(model, parameters)
            got: list[str] = []
        except InvalidParameters as exc:
            got = sorted(exc.problems)
        if _service_only(parameters) or (_lenient_literal(parameters) and not expected):
            assert set(got) <= set(expected) or not expected, (model, parameters)
        else:
            assert got == expected, (model, parameters)
        checked += 1
        refused += bool(expected)
    assert checked > 4000 and 0 < refused < checked


def test_messages_name_the_parameter_and_what_is_allowed() -> None:
    with pytest.raises(InvalidParameters) as caught:
        validate_parameters("cogvideox-2", {"prompt": "x", "fps": 24, "colour": "red"})
    assert caught.value.problems == [
        "parameters.fps: 24 is not allowed for cogvideox-2; allowed: 30, 60",
        "parameters.colour: unknown parameter for cogvideox-2; allowed parameters: prompt, "
        "image_url, quality, with_audio, watermark_enabled, size, fps",
    ]
    with pytest.raises(UnknownModel, match=r"supported models: wanx2\.1-t2v-turbo"):
        get_model("sora")


def test_compatibility_forms_are_accepted_as_the_service_accepts_them() -> None:
    validate_parameters("wanx2.1-t2v-turbo", {"prompt": "x", "duration": "5", "seed": -1})
    validate_parameters("wanx2.1-t2v-turbo", {"prompt": "x", "resolution": "480P"})
    with pytest.raises(InvalidParameters, match="contradicts size"):
        validate_parameters(
            "wanx2.1-t2v-turbo", {"prompt": "x", "resolution": "480P", "size": "1280*720"}
        )


def test_the_client_imports_no_server_code() -> None:
    code = (
        "import sys, video_client, video_client.models, video_client.schemas;"
        "print(sorted({m.split('.')[0] for m in sys.modules}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True,
        cwd=contract_sync.CLIENT,
    ).stdout  # fmt: skip
    loaded = set(eval(out))  # a printed list of names
    server = {"consumers", "providers", "schemas", "faststream", "pymongo", "httpx", "simulator"}
    assert not loaded & server
