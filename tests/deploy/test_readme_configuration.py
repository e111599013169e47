"""The README's configuration table lists every variable the code reads, who reads it and how
Terraform provides it, as the code and terraform/ actually do."""

from __future__ import annotations

import re
from pathlib import Path

from deploy.agreement import settings_variables, terraform_environment
from deploy.manifest import FUNCTION_SETTINGS

README = Path(__file__).resolve().parents[2] / "README.md"
FIELDS, EVERY_VARIABLE = settings_variables()
TERRAFORM = terraform_environment()


def configuration_rows() -> dict[str, list[str]]:
    """variable -> [default, read by, terraform, meaning] of the README's "Configuration" table."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## Configuration (environment)", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, list[str]] = {}
    for line in section.splitlines():
        match = re.match(r"^\| `([A-Z0-9_]+)` \|(.*)\|$", line)
        if match:
            rows[match.group(1)] = [cell.strip() for cell in match.group(2).split(" | ")]
    return rows


def readers(variable: str) -> set[str]:
    return {fn for fn, fields in FUNCTION_SETTINGS.items() if any(variable in FIELDS[f] for f in fields)}


def provided_as(variable: str) -> str:
    if any(variable in env.secret for env in TERRAFORM.values()):
        return "secret"
    return "plain" if any(variable in env.plain for env in TERRAFORM.values()) else "—"


def test_the_readme_lists_every_variable_the_code_reads_and_no_other() -> None:
    assert set(configuration_rows()) == EVERY_VARIABLE


def test_each_row_says_which_functions_read_it_and_how_terraform_provides_it() -> None:
    # Given the table's rows
    for variable, (default, read_by, terraform, meaning) in configuration_rows().items():
        # Then the readers are the functions whose settings fields carry it ("all": every function)
        listed = set(FUNCTION_SETTINGS) if read_by == "all" else {n.strip() for n in read_by.split(",")}
        assert listed == readers(variable), variable
        # And the Terraform column says plain, secret or not provided, as terraform/ does
        assert terraform.split(" ")[0] == provided_as(variable), variable
        assert default and meaning, variable
