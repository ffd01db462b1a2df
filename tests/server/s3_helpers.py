"""An S3-compatible server on loopback for the tests: moto's server mode in a thread of this process.

`moto_s3` starts it on a free port and points the standard AWS environment at it (the way an operator points
datamill at MinIO: ``AWS_ENDPOINT_URL_S3`` and dummy keys), with config files and instance metadata turned off
so nothing reaches the network. `bucket_objects` lists what the bucket really holds, through boto3.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

BUCKET = "datamill-test"


@dataclass(frozen=True)
class S3Server:
    """A running moto server: its endpoint and a boto3 client of it."""

    endpoint_url: str
    client: Any

    def make_bucket(self, name: str = BUCKET) -> str:
        self.client.create_bucket(Bucket=name)
        return name

    def bucket_objects(self, bucket: str = BUCKET, prefix: str = "") -> dict[str, bytes]:
        """Every object under `prefix`, key to content."""
        listed = self.client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
        return {
            item["Key"]: self.client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            for item in listed
        }

    def open_multipart_uploads(self, bucket: str = BUCKET) -> list[str]:
        return [u["Key"] for u in self.client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]


def _environment(endpoint: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL_S3": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": "/nonexistent/aws-config",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
        "AWS_EC2_METADATA_DISABLED": "true",
    }


@contextmanager
def moto_s3() -> Iterator[S3Server]:
    """Serve S3 on a free loopback port, with the AWS environment pointing at it, until the block ends."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request in the test output
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    try:
        with pytest.MonkeyPatch.context() as patch:
            for name, value in _environment(endpoint).items():
                patch.setenv(name, value)
            patch.delenv("AWS_PROFILE", raising=False)
            patch.delenv("AWS_SESSION_TOKEN", raising=False)
            client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
            yield S3Server(endpoint, client)
            client.close()
    finally:
        server.stop()
