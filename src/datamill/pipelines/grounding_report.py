"""What a grounded run reports: rows grounded and ungrounded, and ALCE's citation recall and precision.

Added up from the run's delivered rows as its checkpoint saved them: the public ``grounded`` column of the
grounding step and the internal ``_citation_tally`` of the citation check (`datamill.steps.citations`), so
the figures are the same whether the rows were made in one process, on several workers, or over a resumed
run. A rejected row is not counted: the figures describe the output.

- **citation recall**: supported sentences ÷ cited sentences judged. A sentence is supported when its cited
  passages, read together, support everything it states.
- **citation precision**: precise citations ÷ citations of judged sentences. A citation is precise when its
  sentence is supported and it is not irrelevant (its passage alone does not support the sentence while the
  other cited passages do without it).

Both are measured on the answer as the model wrote it, before unsupported and irrelevant citations were
removed; None when no cited sentence was judged.
"""

from __future__ import annotations

from typing import Any

from datamill.pipelines.checkpoint import CheckpointFiles
from datamill.steps.citations import FIELDS, TALLY_COLUMN, CitationCounts

GROUNDED = "grounded"


def grounding_report(checkpoint: CheckpointFiles) -> dict[str, Any] | None:
    """The grounding figures of a run's saved rows; None when the run did not ground.

    ``{"rows_grounded", "rows_ungrounded", "citations"}``, where ``citations`` is None when no citation
    was checked (chat rows are not) and otherwise holds the `CitationCounts` tallies with ``recall`` and
    ``precision``.
    """
    grounded = ungrounded = 0
    counts = CitationCounts()
    found = tallied = False
    for table in checkpoint.iter_columns((GROUNDED, TALLY_COLUMN)):
        if GROUNDED in table.column_names:
            found = True
            for value in table.column(GROUNDED).to_pylist():
                if value is True:
                    grounded += 1
                elif value is False:
                    ungrounded += 1
        if TALLY_COLUMN in table.column_names:
            for tally in table.column(TALLY_COLUMN).to_pylist():
                if isinstance(tally, dict):
                    tallied = True
                    counts.add(CitationCounts(**{name: int(tally.get(name) or 0) for name in FIELDS}))
    if not found:
        return None
    return {
        "rows_grounded": grounded,
        "rows_ungrounded": ungrounded,
        "citations": citation_figures(counts) if tallied else None,
    }


def citation_figures(counts: CitationCounts) -> dict[str, Any]:
    """``counts`` as the report carries them: every tally, then ``recall`` and ``precision``."""
    return {name: getattr(counts, name) for name in FIELDS} | {
        "recall": counts.recall,
        "precision": counts.precision,
    }


def grounding_lines(report: dict[str, Any] | None) -> dict[str, str]:
    """The figures as labelled lines, for the command line's summary and the HTML report's header."""
    if not report:
        return {}
    rows = report["rows_grounded"] + report["rows_ungrounded"]
    lines = {"grounding": f"{report['rows_grounded']:,} of {rows:,} rows grounded in a passage"}
    citations = report.get("citations")
    if citations and citations["recall"] is not None:
        lines["citation recall"] = (
            f"{citations['recall']:.1%} ({citations['supported']:,} of {citations['sentences']:,} "
            "cited sentences supported by their citations)"
        )
        lines["citation precision"] = (
            f"{citations['precision']:.1%} ({citations['precise']:,} of {citations['judged']:,} citations "
            f"relevant; {citations['removed']:,} removed)"
        )
    elif citations:
        lines["citations"] = f"no cited sentence was judged; {citations['removed']:,} citations removed"
    return lines
