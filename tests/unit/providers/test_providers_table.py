"""The README's parameter table is generated from the schemas."""

from __future__ import annotations

import subprocess
import sys

from providers import MODELS, parameters_table_markdown


def test_every_model_and_parameter_is_listed() -> None:
    table = parameters_table_markdown()
    for spec in MODELS.values():
        section = table.split(f"#### `{spec.name}`")[1].split("####")[0]
        assert spec.kind in section
        for name in spec.parameters.model_fields:
            assert f"| `{name}` |" in section


def test_rows_show_type_allowed_values_default_and_required() -> None:
    table = parameters_table_markdown()
    assert (
        "| `size` | string | 1280\\*720, 720\\*1280, 960\\*960, 1088\\*832, 832\\*1088 "
        "| 1280\\*720 | no |" in table
    )
    assert (
        "| `img_url` | string | an http(s):// URL, an oss:// URL or a data:image/...;base64,... "
        "URI: JPEG, PNG without alpha, BMP or WebP; 240 to 8000 px a side; file up to 10 MB, as "
        "a data: URI up to 700 KiB |  | yes |" in table
    )
    assert "aspect ratio 1:4 to 4:1" in table and "at least 128x128 px" in table
    assert "| `duration` | integer | 3, 4, 5 | 5 | no |" in table
    assert "| `image_url` | list of string | 1 to 3 items; each an http(s):// URL" in table
    assert "| `last_frame_url` | string |" in table and "| yes, unless template is given |" in table
    assert "`resolution` is accepted instead of `size` (720P means 1280\\*720)." in table


def test_python_m_providers_table_prints_it() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "providers.table"], capture_output=True, text=True, check=True
    ).stdout
    assert out == parameters_table_markdown()
