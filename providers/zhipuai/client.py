"""BigModel (Zhipu AI open platform): CogVideoX and Vidu models."""

from __future__ import annotations

from typing import ClassVar

from providers.catalog import models_of
from providers.http_provider import HttpProvider
from providers.wire_types import Wire
from providers.zhipuai import wire as bigmodel_wire


class BigModelProvider(HttpProvider):
    name = "zhipuai"
    key_env = "ZHIPUAI_API_KEY"
    models = models_of("zhipuai")
    # The documented result host is sfile.chatglm.cn; CogVideoX results are also served from
    # aigc-files.bigmodel.cn (the platform's own domain). Subdomains only, each checked (https,
    # port 443, public addresses: consumers/media/hosts.py).
    result_host_suffixes = (".chatglm.cn", ".bigmodel.cn")
    supports_cancel = False  # no cancel endpoint
    # A repeated request_id is refused with 1231 (Z-ERR), and each attempt sends its own.
    dedupes_submits = True
    wire: ClassVar[Wire] = bigmodel_wire
