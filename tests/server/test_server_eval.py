"""The quality evaluation through the official SDK: status before and after a run, the quality object, the
per-row judgements, wait_for_evaluation, the dataset's evaluation_summary, and evaluation turned off."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import adaption
import pytest
from runs_helpers import MAPPING, qa_rows, run_settings, runs_server, upload, wait_done

from conftest import RunningServer


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with runs_server(tmp_path_factory.mktemp("eval")) as running:
        yield running


def _wait_for_evaluation(
    client: adaption.Adaption, dataset_id: str
) -> adaption.types.DatasetGetEvaluationResponse:
    return client.datasets.wait_for_evaluation(
        dataset_id, initial_interval=0.05, max_interval=0.2, backoff_factor=1.5, timeout=60
    )


def test_before_any_run_the_status_is_null(srv: RunningServer, tmp_path: Path) -> None:
    client = srv.client()
    dataset_id = upload(client, tmp_path / "qa.csv", qa_rows(3))
    evaluation = client.datasets.get_evaluation(dataset_id)
    assert (evaluation.dataset_id, evaluation.status, evaluation.quality, evaluation.raw_results) == (
        dataset_id,
        None,
        None,
        None,
    )


def test_an_adaptation_is_graded_before_and_after(srv: RunningServer, tmp_path: Path) -> None:
    client = srv.client()
    dataset_id = upload(client, tmp_path / "qa.csv", qa_rows(12))
    client.datasets.adapt(dataset_id, column_mapping=MAPPING)
    evaluation = _wait_for_evaluation(client, dataset_id)
    assert evaluation.status == "succeeded"
    quality = evaluation.quality
    assert quality is not None
    assert quality.grade_before in tuple("ABCDE")
    assert quality.grade_after in tuple("ABCDE")
    assert quality.score_before is not None
    assert 0 <= quality.score_before <= 10
    assert quality.score_after is not None
    assert 0 <= quality.score_after <= 10
    assert quality.percentile_after is not None
    raw = evaluation.raw_results
    assert raw is not None
    rows = raw["rows"]
    assert isinstance(rows, list)
    assert len(rows) == 10  # the server's sample size (run_settings: eval_sample_size=10)
    for judged in rows:
        assert {"before", "after", "row_id"} <= set(judged)
        assert judged["after"]["answer"].startswith("[fake] ")
    assert {"rubric", "sample", "judge", "before", "after"} <= set(raw)
    # The dataset shows the same grade, without the percentile.
    wait_done(client, dataset_id)
    summary = client.datasets.get(dataset_id).evaluation_summary
    assert summary is not None
    assert (summary.grade_before, summary.grade_after, summary.score_after) == (
        quality.grade_before,
        quality.grade_after,
        quality.score_after,
    )


def test_another_tenant_cannot_read_the_evaluation(srv: RunningServer, tmp_path: Path) -> None:
    owner = srv.client()
    dataset_id = upload(owner, tmp_path / "qa.csv", qa_rows(2))
    with pytest.raises(adaption.NotFoundError):
        srv.client().datasets.get_evaluation(dataset_id)


def test_evaluation_turned_off_is_skipped(tmp_path: Path) -> None:
    with runs_server(tmp_path / "data", run_settings(evaluate=False)) as srv:
        client = srv.client()
        dataset_id = upload(client, tmp_path / "qa.csv", qa_rows(3))
        client.datasets.adapt(dataset_id, column_mapping=MAPPING)
        evaluation = _wait_for_evaluation(client, dataset_id)
        dataset = client.datasets.get(dataset_id)
    assert (evaluation.status, evaluation.quality) == ("skipped", None)
    assert dataset.status == "succeeded"
    assert dataset.evaluation_summary is None
