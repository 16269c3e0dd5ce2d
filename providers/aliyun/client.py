"""DashScope (Aliyun Model Studio): the wanx2.1 models."""

from __future__ import annotations

from typing import ClassVar

from providers.aliyun import wire as dashscope_wire
from providers.catalog import models_of
from providers.http_provider import HttpProvider
from providers.wire_types import Wire


class DashScopeProvider(HttpProvider):
    name = "aliyun"
    key_env = "ALIYUN_API_KEY"
    models = models_of("aliyun")
    # Results come from OSS buckets whose names and regions vary: the docs show
    # dashscope-result-wlcb.oss-cn-wulanchabu.aliyuncs.com; others seen are -bj (oss-cn-beijing),
    # -sh (also oss-accelerate), -sz, -sgp (oss-ap-southeast-1), -wlcb-acdr-1. Subdomains only
    # (leading dot), so each is checked: https, port 443, public addresses, and no `-internal`
    # endpoint (consumers/media/hosts.py).
    result_host_suffixes = (".aliyuncs.com",)
    supports_cancel = True  # PENDING tasks only
    wire: ClassVar[Wire] = dashscope_wire
