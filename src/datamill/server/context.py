"""`ServerContext`: the services one app instance uses, built from its settings (in `create_app`)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from fastapi import Request

from datamill.server.signing import LinkSigner, load_or_create_secret
from datamill.services.adaptation.adapt import make_gateway
from datamill.services.autoscientist.runs import AutoscientistService
from datamill.services.datasets.augment import AugmentService
from datamill.services.datasets.catalog import DatasetService
from datamill.services.datasets.combine import CombineService
from datamill.services.datasets.custom_evals import BackgroundCustomEvals, CustomEvalService
from datamill.services.datasets.export_links import ExportLinks
from datamill.services.datasets.ingest import BackgroundIngest, IngestService
from datamill.services.datasets.invent import InventService
from datamill.services.datasets.invent_catalog import Domain, load_catalogue
from datamill.services.datasets.output import CheckpointRunOutputs, DatasetOutputs
from datamill.services.datasets.profile import ReadBudget
from datamill.services.datasets.publish.service import PublishService
from datamill.services.datasets.purge import DatasetPurge
from datamill.services.datasets.uploads import UploadService
from datamill.services.datasets.url_import import BackgroundImports, UrlImportService
from datamill.services.inference.file_search import FileSearch
from datamill.services.inference.models import ModelCatalog
from datamill.services.inference.responses import ResponseService
from datamill.services.settings.entry import Settings
from datamill.services.settings.publish import PublishSettings
from datamill.services.settings.runs import RunSettings
from datamill.services.settings.server import ServerSettings
from datamill.services.settings.tree import DatamillSettings
from datamill.services.tenants import TenantService
from datamill.services.training.hyperparams import HyperparamAdvisor
from datamill.services.wiring import RunServices
from datamill.store import BlobStore, Store, blob_store_from_url
from datamill.text.fetch_policy import FetchPolicy


@dataclass(frozen=True)
class ServerContext:
    """Everything a request handler may need; reach it through the `get_context` dependency."""

    settings: ServerSettings
    store: Store
    blobs: BlobStore
    signer: LinkSigner
    tenants: TenantService
    datasets: DatasetService
    purge: DatasetPurge
    uploads: UploadService
    ingest: BackgroundIngest
    imports: BackgroundImports
    combine: CombineService
    custom_evals: CustomEvalService
    custom_eval_runner: BackgroundCustomEvals
    publish: PublishService
    runs: RunServices
    exports: ExportLinks
    models: ModelCatalog
    hyperparams: HyperparamAdvisor
    autoscientist: AutoscientistService
    responses: ResponseService
    augment: AugmentService
    invent_domains: list[Domain]
    invent: InventService

    @classmethod
    def from_settings(cls, tree: DatamillSettings) -> ServerContext:
        """Wire the services for every section of the settings tree; connects to nothing."""
        return cls.build(tree.server, runs=tree.runs, llm=tree.llm, publish=tree.publish)

    @classmethod
    def build(
        cls,
        settings: ServerSettings,
        *,
        runs: RunSettings | None = None,
        llm: Settings | None = None,
        publish: PublishSettings | None = None,
    ) -> ServerContext:
        """Wire the services for `settings`; sections not given keep their defaults. Connects to nothing."""
        store = Store.from_url(settings.database_url)
        blobs = blob_store_from_url(settings.blob_url)
        runs = runs or RunSettings()
        # The judge model, routes and keys of custom evaluations are the gateway's, as for the CLI.
        model_settings = replace(llm or runs.llm_settings(settings.data_dir), data_dir=settings.data_dir)
        secret = settings.signing_secret or load_or_create_secret(settings.secret_path)
        budget = ReadBudget(
            settings.ingest_max_columns, settings.ingest_timeout_s, settings.ingest_max_memory_mb << 20
        )
        ingest = BackgroundIngest(
            IngestService(store, blobs, budget),
            workers=settings.ingest_workers,
            max_per_tenant=settings.ingest_tenant_workers,
        )
        uploads = UploadService(
            store,
            blobs,
            max_bytes=settings.max_upload_bytes,
            ttl_s=settings.upload_url_ttl_s,
            on_uploaded=ingest.submit,
        )
        imports = UrlImportService(
            store,
            blobs,
            max_bytes=settings.max_upload_bytes,
            on_fetched=ingest.submit,
            policy=FetchPolicy.with_allowed(model_settings.fetch_allow),
        )
        outputs = DatasetOutputs(store, blobs, CheckpointRunOutputs(settings.data_dir, runs.run_data_url))
        custom_evals = CustomEvalService(
            store,
            outputs,
            lambda: make_gateway(model_settings),
            model=model_settings.model,
            prices=runs.price_table,
        )
        exports = ExportLinks(store, DatasetService(store))
        purge = DatasetPurge(store, blobs, lambda run_id: runs.run_location(settings.data_dir, run_id))
        models = ModelCatalog(model_settings)
        publisher = PublishService(
            DatasetService(store),
            outputs,
            publish or PublishSettings(),
            custom_evals,
            on_published=exports.record,
        )
        catalogue = load_catalogue(settings.data_dir)
        run_services = RunServices.build(store, blobs, runs, settings.data_dir)
        return cls(
            settings=settings,
            store=store,
            blobs=blobs,
            signer=LinkSigner(secret),
            tenants=TenantService(store, default_credits=settings.default_credits),
            datasets=DatasetService(store, purge),
            purge=purge,
            uploads=uploads,
            ingest=ingest,
            imports=BackgroundImports(
                imports, workers=settings.ingest_workers, max_per_tenant=settings.ingest_tenant_workers
            ),
            combine=CombineService(store, blobs, outputs, on_created=ingest.submit),
            custom_evals=custom_evals,
            custom_eval_runner=BackgroundCustomEvals(custom_evals),
            publish=publisher,
            runs=run_services,
            exports=exports,
            models=models,
            invent_domains=catalogue,
            invent=InventService(
                store,
                runs.price_table,
                catalogue,
                model=runs.model,
                on_queued=run_services.worker.wake,
            ),
            augment=AugmentService(
                store,
                blobs,
                outputs,
                runs.price_table,
                lambda run_id: runs.run_location(settings.data_dir, run_id),
            ),
            responses=ResponseService(
                store,
                models,
                lambda: make_gateway(model_settings, use_cache=False),
                runs.price_table,
                FileSearch(store, outputs),
            ),
            hyperparams=HyperparamAdvisor(DatasetService(store)),
            autoscientist=AutoscientistService(
                store, blobs, outputs, runs.training, runs.price_table, on_queued=run_services.worker.wake
            ),
        )


def get_context(request: Request) -> ServerContext:
    """FastAPI dependency: the context of the app serving the request."""
    context: ServerContext = request.app.state.context
    return context
