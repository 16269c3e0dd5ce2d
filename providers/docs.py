"""The README's table of models and parameters, generated from the schemas so it cannot drift.

Print it with `python -m providers.table`.
"""

from __future__ import annotations

from providers.catalog import MODELS
from providers.describe import describe_schema

_FOOTER = (
    "Compatibility forms accepted for requests written for the original service: an integer "
    'given as a numeric string (`"duration": "5"`), `seed: -1` on DashScope models (random: no '
    'seed is sent), and `resolution: "480P" | "720P"` on the wanx2.1 text-to-video models (the '
    "16:9 `size` of that class). Omitted parameters are not sent: the vendor applies the default "
    "shown. Prompts longer than the documented limit are rejected, not truncated. Images given "
    "as `data:` URIs are checked as the table says (media type, format, pixel size, aspect ratio, "
    "alpha, length: at most 700 KiB each and for all of a request's together, so that it fits in "
    "one Kafka message); images given by URL are the vendor's to fetch and check."
)


def parameters_table_markdown() -> str:
    lines = ["| model | provider | kind | parameters |", "|---|---|---|---|"]
    for spec in MODELS.values():
        names = ", ".join(f"`{name}`" for name in spec.parameters.model_fields)
        lines.append(f"| `{spec.name}` | `{spec.provider}` | {spec.kind} | {names} |")
    for spec in MODELS.values():
        lines += ["", f"#### `{spec.name}` ({spec.provider}: {spec.kind})", ""]
        lines += ["| parameter | type | allowed | default | required |", "|---|---|---|---|---|"]
        for doc in describe_schema(spec.parameters):
            cells = (f"`{doc.name}`", doc.type, doc.allowed, doc.default or "", doc.required)
            lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
        lines += [f"\n{_cell(note)}." for note in getattr(spec.parameters, "notes", ())]
    return "\n".join([*lines, "", _FOOTER, ""])


def _cell(text: str) -> str:
    """Markdown would read `1280*720, 720*1280` as emphasis and `|` as a column; code spans
    (between backticks) are left alone."""
    parts = text.replace("|", "\\|").split("`")
    return "`".join(p if i % 2 else p.replace("*", "\\*") for i, p in enumerate(parts))
