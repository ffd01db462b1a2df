"""Error codes live in one table, and one mapper turns the error that stopped any job into its code."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import datamill
from datamill.core.error_codes import ErrorCode, error_data
from datamill.core.errors import (
    ConfigError,
    DataFormatError,
    Issue,
    PermanentModelError,
    UnknownModelError,
    ValidationError,
)
from datamill.services.jobs.failures import job_failure

SRC = Path(datamill.__file__).parent
_CODE = re.compile(r"E0\d{3}")


def test_no_module_but_the_table_spells_a_code() -> None:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        module = path.relative_to(SRC).as_posix()
        if module == "core/error_codes.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and _CODE.fullmatch(node.value):
                found.append(f"{module}:{node.lineno} {node.value}")
    assert found == []


def test_the_table_documents_every_code() -> None:
    import datamill.core.error_codes as table

    documented = set(_CODE.findall(table.__doc__ or ""))
    assert documented == {code.value for code in ErrorCode}


def test_error_data_carries_the_code_as_the_wire_string() -> None:
    data = error_data(ErrorCode.CANCELLED, "cancelled")
    assert data == {"message": "cancelled", "code": "E0304", "level": "error"}
    assert type(data["code"]) is str


@pytest.mark.parametrize(
    ("exc", "code", "message"),
    [
        (
            DataFormatError("/srv/x.csv", "line 3 has 2 fields"),
            "E0303",
            "the seed files cannot be read: line 3",
        ),
        (ValidationError(Issue("column_mapping.prompt", "no column 'q'")), "E0301", "column_mapping.prompt"),
        (UnknownModelError("acme/x", ["fake/*"]), "E0300", "the evaluation model cannot be used"),
        (ConfigError("set the OPENAI_API_KEY environment variable"), "E0300", "OPENAI_API_KEY"),
        (PermanentModelError("401 unauthorized", status=401), "E0300", "401 unauthorized"),
    ],
)
def test_one_mapper_for_every_job_kind(exc: Exception, code: str, message: str) -> None:
    data = job_failure(exc, input_name="the seed files", model_name="the evaluation model")
    assert data["code"] == code
    assert message in data["message"]
    assert data["level"] == "error"
