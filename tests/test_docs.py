"""Docs that cannot drift: every setting appears in the README's table."""

from pathlib import Path

from assistant.settings import Settings

README = Path(__file__).resolve().parent.parent / "README.md"


def test_every_setting_is_documented():
    text = README.read_text(encoding="utf-8")
    missing = [name for name in Settings.model_fields if f"`POLICYLAB_{name.upper()}`" not in text]
    assert not missing, f"README lacks settings {missing}: run `python scripts/settings_table.py` and paste the table"


def test_readme_starts_with_the_two_commands():
    text = README.read_text(encoding="utf-8")
    first_block = text.split("```")[1]
    assert "make run" in first_block and "make test" in first_block
