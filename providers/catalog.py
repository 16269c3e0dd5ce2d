"""The 13 supported models (contract "Supported models"), one row each, read top to bottom.

`typical_duration_s` is when the first status query is worth making. DashScope's 2025-04 text to
video page gives about 5–10 minutes for wanx2.1: plus models are put at 8 minutes and the faster
turbo models at 5. BigModel publishes no times; the values are conservative guesses (CogVideoX
about 2 minutes, flash 1; Vidu Q1 2 minutes, Vidu 2, which makes 4 s clips, 1).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from providers.aliyun import params as a
from providers.base import ModelSpec
from providers.zhipuai import params as z

M = ModelSpec  # short, so that each model fits on one line

_ALIYUN = (
    M("wanx2.1-t2v-turbo", "aliyun", "text to video, fast", a.T2VTurboParameters, 300),
    M("wanx2.1-t2v-plus", "aliyun", "text to video, quality", a.T2VPlusParameters, 480),
    M("wanx2.1-i2v-turbo", "aliyun", "first frame to video, fast", a.I2VTurboParameters, 300),
    M("wanx2.1-i2v-plus", "aliyun", "first frame to video, quality", a.I2VPlusParameters, 480),
    M("wanx2.1-kf2v-plus", "aliyun", "first and last frame to video", a.KF2VPlusParameters, 480),
)  # fmt: skip
_ZHIPUAI = (
    M("cogvideox-2", "zhipuai", "text or image to video", z.CogVideoXParameters, 120),
    M("cogvideox-flash", "zhipuai", "text or image to video, fast", z.CogVideoXParameters, 60),
    M("viduq1-text", "zhipuai", "Vidu text to video", z.ViduQ1TextParameters, 120),
    M("viduq1-image", "zhipuai", "Vidu image to video", z.ViduQ1ImageParameters, 120),
    M("viduq1-start-end", "zhipuai", "Vidu first and last frame", z.ViduQ1StartEndParameters, 120),
    M("vidu2-image", "zhipuai", "Vidu 2 image to video", z.Vidu2ImageParameters, 60),
    M("vidu2-start-end", "zhipuai", "Vidu 2 first and last frame", z.Vidu2StartEndParameters, 60),
    M("vidu2-reference", "zhipuai", "Vidu 2 reference subjects", z.Vidu2ReferenceParameters, 60),
)  # fmt: skip

MODELS: Mapping[str, ModelSpec] = MappingProxyType({m.name: m for m in (*_ALIYUN, *_ZHIPUAI)})


def models_of(provider: str) -> Mapping[str, ModelSpec]:
    return MappingProxyType({name: s for name, s in MODELS.items() if s.provider == provider})
