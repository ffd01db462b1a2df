"""`ServerContext`: the services one app instance uses, built from its settings (in `create_app`)."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from datamill.api.datasets import DatasetService
from datamill.api.ingest import BackgroundIngest, IngestService
from datamill.api.server_settings import ServerSettings
from datamill.api.tenants import TenantService
from datamill.api.uploads import UploadService
from datamill.server.signing import UploadSigner, load_or_create_secret
from datamill.store import BlobStore, Store, blob_store_from_url


@dataclass(frozen=True)
class ServerContext:
    """Everything a request handler may need; reach it through the `get_context` dependency."""

    settings: ServerSettings
    store: Store
    blobs: BlobStore
    signer: UploadSigner
    tenants: TenantService
    datasets: DatasetService
    uploads: UploadService
    ingest: BackgroundIngest

    @classmethod
    def build(cls, settings: ServerSettings) -> ServerContext:
        """Wire the services for `settings`; connects to nothing until used."""
        store = Store.from_url(settings.database_url)
        blobs = blob_store_from_url(settings.blob_url)
        secret = settings.signing_secret or load_or_create_secret(settings.secret_path)
        ingest = BackgroundIngest(IngestService(store, blobs), workers=settings.ingest_workers)
        uploads = UploadService(
            store,
            blobs,
            max_bytes=settings.max_upload_bytes,
            ttl_s=settings.upload_url_ttl_s,
            on_uploaded=ingest.submit,
        )
        return cls(
            settings=settings,
            store=store,
            blobs=blobs,
            signer=UploadSigner(secret),
            tenants=TenantService(store, default_credits=settings.default_credits),
            datasets=DatasetService(store),
            uploads=uploads,
            ingest=ingest,
        )


def get_context(request: Request) -> ServerContext:
    """FastAPI dependency: the context of the app serving the request."""
    context: ServerContext = request.app.state.context
    return context
