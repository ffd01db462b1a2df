"""Export links: where a dataset's output was published, as the Adaption API's ``get_export_links`` shows it.

Every successful publish is recorded (`PublishService` calls `ExportLinks.record`). The answer has the
wire's keys ``huggingface``, ``kaggle`` and ``google_sheets`` (the URL of the latest export to each, else
null; datamill publishes to neither Kaggle nor Google Sheets, so those stay null) and datamill's own
``paths``: every local or fsspec location the dataset was published to, oldest first.
"""

from __future__ import annotations

from typing import Any

from datamill.services.datasets.catalog import DatasetService
from datamill.store import Store
from datamill.store import exports as repo


class ExportLinks:
    """Records publishes and lists them per dataset; see the module docstring."""

    def __init__(self, store: Store, datasets: DatasetService) -> None:
        self._store, self._datasets = store, datasets

    def record(self, tenant_id: str, dataset_id: str, target: str, location: str) -> None:
        """Remember that the dataset was published to `location` through `target`."""
        with self._store.session() as session:
            repo.add_export(session, tenant_id, dataset_id, target, location)

    def links(self, tenant_id: str, dataset_id: str) -> dict[str, Any]:
        """The export links of the dataset.

        Raises:
            NotFoundError: no such dataset for this tenant.
        """
        self._datasets.get(tenant_id, dataset_id)
        with self._store.session() as session:
            rows = repo.list_exports(session, tenant_id, dataset_id)
        latest = {row.target: row.location for row in rows}
        return {
            "huggingface": latest.get("huggingface"),
            "kaggle": latest.get("kaggle"),
            "google_sheets": latest.get("google_sheets"),
            "paths": list(dict.fromkeys(row.location for row in rows if row.target in ("local", "fsspec"))),
        }
