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
    # The documented result host is sfile.chatglm.cn; bigmodel.cn is the platform's own domain.
    result_host_suffixes = ("chatglm.cn", "bigmodel.cn")
    supports_cancel = False  # no cancel endpoint
    wire: ClassVar[Wire] = bigmodel_wire
