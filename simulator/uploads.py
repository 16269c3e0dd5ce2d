"""DashScope's temporary files (`oss://…`), bound to the account and model that uploaded them.

upstream-apis.md §1.10 (A-UPL): a file uploaded through getPolicy and the OSS form POST "is bound
to the model named in step 1 (must be the model you call) and to the Aliyun main account; valid
48 h"; a call that uses it must send `X-DashScope-OssResourceResolve: enable`.

The upload flow itself is not simulated: `POST /_sim/uploads` stands for it and records a file as
uploaded by a key's account for a model (its bytes: a file of `media/` or given in base64). A
create naming an `oss://` URL that is not such a file of the caller's account and the model
called, or is older than 48 h, is refused with 400 `invalid_parameter_error` and the message
§1.10 gives for a URL that cannot be used (inferred: the docs name no error for these cases).
"""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from simulator import media
from simulator.errors import Rejected
from simulator.state import fingerprint

OSS_TTL_S = 48 * 3600.0  # §1.10: "valid 48 h"
BAD_URL_CODE = "invalid_parameter_error"
BAD_URL_MESSAGE = (
    "InternalError.Algo.InvalidParameter: The provided URL does not appear to be valid. "
    "Ensure it is correctly formatted."
)


@dataclass(frozen=True)
class Upload:
    path: str  # the URL without "oss://", e.g. dashscope-instant/<dir>/<file>
    account: str
    model: str
    created: float
    content: bytes = field(repr=False)

    @property
    def url(self) -> str:
        return f"oss://{self.path}"

    def view(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "account": self.account,
            "model": self.model,
            "created_at": datetime.fromtimestamp(self.created, UTC).isoformat(),
            "expires_at": datetime.fromtimestamp(self.created + OSS_TTL_S, UTC).isoformat(),
            "size": len(self.content),
        }


class Uploads:
    def __init__(self) -> None:
        self._files: dict[str, Upload] = {}

    def add(self, upload: Upload) -> None:
        self._files[upload.path] = upload

    def resolve(self, url: str, account: str, model: str, now: float) -> Upload:
        """The file behind an `oss://` URL for this caller, or Rejected."""
        upload = self._files.get(url.removeprefix("oss://"))
        if upload is None:
            why = "no such uploaded file"
        elif upload.account != account:
            why = "the file was uploaded by another account"
        elif upload.model != model:
            why = f"the file was uploaded for {upload.model}, not {model}"
        elif now - upload.created > OSS_TTL_S:
            why = "the file is older than 48 h"
        else:
            return upload
        raise Rejected(400, BAD_URL_CODE, f"{BAD_URL_MESSAGE} ({why})")

    def all(self) -> list[Upload]:
        return list(self._files.values())

    def clear(self) -> None:
        self._files.clear()


def upload_from_request(data: Any, account: str, now: float) -> Upload:
    """An Upload from the control API's JSON (less `api_key`/`account`, already resolved):
    `model`, `file` (a name in media/) or `content_base64`, and optionally `path` and `age_s`.
    ValueError names the problem."""
    if not isinstance(data, dict):
        raise ValueError("an upload is a JSON object")
    allowed = {"model", "file", "content_base64", "path", "age_s"}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ValueError(f"unknown upload keys {unknown}; allowed: {sorted(allowed)}")
    model = data.get("model")
    if not isinstance(model, str) or not model:
        raise ValueError("model is required: a file is bound to the model it was uploaded for")
    name = data.get("file")
    if isinstance(name, str):
        content = media.read_image(name)
        if content is None:
            raise ValueError(f"no file {name!r} in the simulator's media/")
    elif isinstance(data.get("content_base64"), str):
        try:
            content = base64.b64decode(data["content_base64"], validate=True)
        except binascii.Error:
            raise ValueError("content_base64 is not base64") from None
    else:
        raise ValueError("give file (a name in media/) or content_base64")
    filename = name if isinstance(name, str) else "upload.bin"
    day = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d")
    path = (
        data.get("path")
        or f"dashscope-instant/{fingerprint(account)}/{day}/{uuid.uuid4()}/{filename}"
    )
    if not isinstance(path, str) or path.startswith("oss://") or not path.strip():
        raise ValueError("path is the oss:// URL without its scheme")
    age = data.get("age_s", 0)
    if not isinstance(age, int | float) or age < 0:
        raise ValueError("age_s must be a number >= 0")
    return Upload(path, account, model, now - float(age), content)
