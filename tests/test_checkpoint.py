"""Batch checkpoints: atomic parts, resume markers, fingerprint changes, schema unification on export."""

from __future__ import annotations

from pathlib import Path

from datamill.pipelines.checkpoint import Checkpoint


def test_saved_batches_are_completed_and_read_back_in_order(tmp_path: Path):
    cp = Checkpoint(tmp_path / "run", "fp1")
    cp.save(1, [{"a": "second"}], [{"row_number": 3, "step": "x", "reason": "r"}])
    cp.save(0, [{"a": "first"}], [])
    assert cp.completed() == {0, 1}
    assert [t.column("a").to_pylist() for t in cp.iter_output()] == [["first"], ["second"]]
    assert list(cp.iter_rejections()) == [{"row_number": 3, "step": "x", "reason": "r"}]


def test_a_new_fingerprint_starts_over(tmp_path: Path):
    Checkpoint(tmp_path / "run", "fp1").save(0, [{"a": 1}], [])
    assert Checkpoint(tmp_path / "run", "fp1").completed() == {0}
    assert Checkpoint(tmp_path / "run", "fp2").completed() == set()


def test_export_unifies_null_columns_with_later_types(tmp_path: Path):
    cp = Checkpoint(tmp_path / "run", "fp")
    cp.save(0, [{"a": "x", "sources": []}, {"a": "y", "sources": None}], [])
    cp.save(1, [], [])
    cp.save(2, [{"a": "z", "sources": [{"n": 1, "source": "doc.md"}]}, {"a": "w"}], [])
    tables = list(cp.iter_output())
    assert len(tables) == 2
    assert tables[0].schema == tables[1].schema
    assert tables[1].column("sources").to_pylist() == [[{"n": 1, "source": "doc.md"}], None]
