"""`ServerContext`: the services one app instance uses, built from its settings (in `create_app`)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from fastapi import Request

from datamill.server.signing import LinkSigner, load_or_create_secret
from datamill.services.adaptation.adapt import make_gateway
from datamill.services.datasets.catalog import DatasetService
from datamill.services.datasets.combine import CombineService
from datamill.services.datasets.custom_evals import BackgroundCustomEvals, CustomEvalService
from datamill.services.datasets.ingest import BackgroundIngest, IngestService
from datamill.services.datasets.output import CheckpointRunOutputs, DatasetOutputs
from datamill.services.datasets.publish.service import PublishService, PublishSettings
from datamill.services.datasets.uploads import UploadService
from datamill.services.datasets.url_import import BackgroundImports, UrlImportService
from datamill.services.settings.entry import Settings
from datamill.services.settings.runs import RunSettings
from datamill.services.settings.server import ServerSettings
from datamill.services.tenants import TenantService
from datamill.services.wiring import RunServices
from datamill.store import BlobStore, Store, blob_store_from_url


@dataclass(frozen=True)
class ServerContext:
    """Everything a request handler may need; reach it through the `get_context` dependency."""

    settings: ServerSettings
    store: Store
    blobs: BlobStore
    signer: LinkSigner
    tenants: TenantService
    datasets: DatasetService
    uploads: UploadService
    ingest: BackgroundIngest
    imports: BackgroundImports
    combine: CombineService
    custom_evals: CustomEvalService
    custom_eval_runner: BackgroundCustomEvals
    publish: PublishService
    runs: RunServices

    @classmethod
    def build(cls, settings: ServerSettings, *, runs: RunSettings | None = None) -> ServerContext:
        """Wire the services for `settings` and `runs` (default: the environment); connects to nothing."""
        store = Store.from_url(settings.database_url)
        blobs = blob_store_from_url(settings.blob_url)
        runs = runs or RunSettings.from_env()
        secret = settings.signing_secret or load_or_create_secret(settings.secret_path)
        ingest = BackgroundIngest(IngestService(store, blobs), workers=settings.ingest_workers)
        uploads = UploadService(
            store,
            blobs,
            max_bytes=settings.max_upload_bytes,
            ttl_s=settings.upload_url_ttl_s,
            on_uploaded=ingest.submit,
        )
        imports = UrlImportService(
            store, blobs, max_bytes=settings.max_upload_bytes, on_fetched=ingest.submit
        )
        outputs = DatasetOutputs(store, blobs, CheckpointRunOutputs(settings.data_dir, runs.run_data_url))
        # The judge model and routes come from DATAMILL_MODEL and DATAMILL_ROUTES, as for the CLI.
        model_settings = replace(Settings.from_env(), data_dir=settings.data_dir)
        custom_evals = CustomEvalService(
            store, outputs, lambda: make_gateway(model_settings), model=model_settings.model
        )
        return cls(
            settings=settings,
            store=store,
            blobs=blobs,
            signer=LinkSigner(secret),
            tenants=TenantService(store, default_credits=settings.default_credits),
            datasets=DatasetService(store),
            uploads=uploads,
            ingest=ingest,
            imports=BackgroundImports(imports, workers=settings.ingest_workers),
            combine=CombineService(store, blobs, outputs, on_created=ingest.submit),
            custom_evals=custom_evals,
            custom_eval_runner=BackgroundCustomEvals(custom_evals),
            publish=PublishService(DatasetService(store), outputs, PublishSettings.from_env(), custom_evals),
            runs=RunServices.build(store, blobs, runs, settings.data_dir),
        )


def get_context(request: Request) -> ServerContext:
    """FastAPI dependency: the context of the app serving the request."""
    context: ServerContext = request.app.state.context
    return context
