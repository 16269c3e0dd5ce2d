"""docs/asyncapi.json is what the app declares (`make docs` writes it), and generating it needs
no environment."""

from __future__ import annotations

import importlib.util
import json
from types import ModuleType

import pytest

from tests.harness import ROOT


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("asyncapi_doc", ROOT / "docs" / "asyncapi.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


asyncapi = _generator()


@pytest.fixture(scope="module")
def generated() -> str:
    return str(asyncapi.generate())


def test_the_committed_document_is_current(generated: str) -> None:
    assert asyncapi.DOCUMENT.read_text() == generated, "stale: run `make docs`"


def test_generating_needs_no_secret_even_with_jwt_auth(generated: str) -> None:
    assert asyncapi.generate({"AUTH_MODE": "jwt"}) == generated


def test_it_documents_the_input_topics(generated: str) -> None:
    addresses = {c["address"] for c in json.loads(generated)["channels"].values()}
    assert {"video.requests", "video.cancel"} <= addresses


def test_it_documents_all_five_topics_with_payload_schemas(generated: str) -> None:
    document = json.loads(generated)
    addresses = {c["address"] for c in document["channels"].values()}
    assert addresses == {
        "video.requests",
        "video.cancel",
        "video.status",
        "video.completed",
        "video.requests.dlq",
    }
    schemas = document["components"]["schemas"]
    for name in ("RequestEvent", "CancelEvent", "StatusEvent", "CompletedEvent", "DeadLetterEvent"):
        assert name in schemas, name
    assert document["info"]["title"] != "FastStream"
