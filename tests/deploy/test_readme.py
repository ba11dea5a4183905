"""The README's configuration table names real settings with their real defaults."""

from __future__ import annotations

import re

from .repo import ROOT, setting_defaults, setting_names

_CODE = re.compile(r"`([^`]+)`")
_VARIABLE = re.compile(r"[A-Z][A-Z0-9_]+")


def table_rows() -> list[tuple[list[str], list[str], list[str]]]:
    """(variables, backticked defaults, every variable the row mentions) of each row under "## Configuration"."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not line.startswith("| `"):
            continue
        variables = [v for v in _CODE.findall(cells[0]) if _VARIABLE.fullmatch(v)]
        mentioned = [m.split("=")[0] for m in _CODE.findall(line) if _VARIABLE.fullmatch(m.split("=")[0])]
        rows.append((variables, _CODE.findall(cells[1]), mentioned))
    return rows


def shown(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def test_configuration_table_names_only_real_settings() -> None:
    """Every variable in the table (and every one its text mentions) is one the server reads."""
    rows = table_rows()
    assert len(rows) >= 15
    named = {variable for _, _, mentioned in rows for variable in mentioned}
    assert set() == named - setting_names()


def test_configuration_table_defaults_are_the_real_ones() -> None:
    """Where a row gives one default per variable, each is the setting's default."""
    defaults = setting_defaults()
    checked = 0
    for variables, values, _ in table_rows():
        if len(variables) != len(values):
            continue
        for variable, value in zip(variables, values, strict=True):
            assert shown(defaults[variable]) == value, variable
            checked += 1
    assert checked >= 12
