from pathlib import Path

from providers.table import BEGIN, END, with_table

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_model_table_is_generated_from_the_schemas() -> None:
    text = README.read_text()
    assert BEGIN in text and END in text
    assert text == with_table(text), "stale: run `python -m providers.table --readme README.md`"


def test_readme_starts_with_the_two_commands() -> None:
    text = README.read_text()
    assert "make run" in text.split("## How it works")[0]
    assert "make test" in text.split("## How it works")[0]


def test_ci_runs_the_readme_test_command() -> None:
    ci = (README.parent / ".ci" / "run").read_text()
    assert "make test" in ci
