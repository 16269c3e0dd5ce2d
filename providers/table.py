"""`python -m providers.table` prints the README's model and parameter table;
`python -m providers.table --readme README.md` writes it between the README's markers."""

from __future__ import annotations

import sys
from pathlib import Path

from providers.docs import parameters_table_markdown

BEGIN, END = "<!-- models:begin -->", "<!-- models:end -->"


def with_table(readme: str) -> str:
    """The README text with the generated table between its markers."""
    head, _, rest = readme.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return f"{head}{BEGIN}\n{parameters_table_markdown()}{END}{tail}"


if __name__ == "__main__":
    if sys.argv[1:2] == ["--readme"]:
        path = Path(sys.argv[2])
        path.write_text(with_table(path.read_text()))
    else:
        print(parameters_table_markdown(), end="")
