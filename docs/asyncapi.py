"""The service's AsyncAPI document, docs/asyncapi.json, from what the app declares.

    .venv/bin/python docs/asyncapi.py           # write it (`make docs`)
    .venv/bin/python docs/asyncapi.py --check   # exit 1 when the committed one is stale

It runs `faststream docs gen consumers.app:app` with an empty environment, in an empty
directory (no `.env`), so the document is the same on every machine whatever the shell sets:
topic names and the server address are the defaults. Importing the app connects to nothing and
needs no secret (`AUTH_MODE=jwt` without a key included: the key is checked at start-up).

The request and cancel subscribers read raw records (they parse and check them themselves, so
that bad input becomes a dead letter), which leaves FastStream no payload to document: their
messages get the contract's `RequestEvent` and `CancelEvent` schemas here, from `schemas`.

FastStream's HTML page (`faststream docs serve`) loads the AsyncAPI viewer from a CDN, so no
offline HTML is written: `faststream docs serve docs/asyncapi.json` shows this file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import BaseModel

ROOT = Path(__file__).resolve().parents[1]
DOCUMENT = ROOT / "docs" / "asyncapi.json"


def generate(extra_env: dict[str, str] | None = None) -> str:
    """The document as `faststream docs gen` writes it, generated with no environment."""
    faststream = Path(sys.executable).with_name("faststream")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONHASHSEED": "0",
        **(extra_env or {}),
    }
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "asyncapi.json"
        subprocess.run(
            [str(faststream), "docs", "gen", "consumers.app:app", "--app-dir", str(ROOT),
             "--out", str(out)],
            cwd=scratch, env=env, check=True, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        document = json.loads(out.read_text())
    with_input_payloads(document)
    # Keys in name order: FastStream lists publishers (channels, operations, messages) in an
    # order that changes from run to run, so an unsorted file would never stay current.
    return json.dumps(document, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def with_input_payloads(document: dict[str, Any]) -> None:
    """Give the input topics' messages the contract's models where FastStream found none."""
    sys.path.insert(0, str(ROOT))
    from schemas import CancelEvent, RequestEvent

    models: dict[str, type[BaseModel]] = {
        "video.requests": RequestEvent,
        "video.cancel": CancelEvent,
    }
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for channel in document.get("channels", {}).values():
        model = models.get(channel.get("address", ""))
        if model is None:
            continue
        for reference in channel.get("messages", {}).values():
            name = reference["$ref"].rsplit("/", 1)[-1]
            message = components["messages"][name]
            if message.get("payload") != {"$ref": "#/components/schemas/EmptyPayload"}:
                continue  # the service documents it itself
            schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(schema.pop("$defs", {}))
            schemas[model.__name__] = schema
            message["payload"] = {"$ref": f"#/components/schemas/{model.__name__}"}
            message.setdefault("summary", (model.__doc__ or "").strip().splitlines()[0])
    used = json.dumps(document.get("components", {}).get("messages", {}))
    if "EmptyPayload" not in used:
        schemas.pop("EmptyPayload", None)


def main(argv: list[str]) -> int:
    text = generate()
    if "--check" in argv:
        if not DOCUMENT.exists() or DOCUMENT.read_text() != text:
            print(f"stale: {DOCUMENT.relative_to(ROOT)}; run `make docs`", file=sys.stderr)
            return 1
        return 0
    DOCUMENT.write_text(text)
    print(f"wrote {DOCUMENT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
