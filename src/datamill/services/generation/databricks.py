"""Routes for ``databricks/`` models that one run brings its own workspace credentials for.

The Dataframer API takes ``databricks_client_id``, ``databricks_client_secret`` and ``databricks_api_base``
with a run that uses a ``databricks/`` model. Such a model is then served, for that run only, by the
OpenAI-compatible endpoint at ``databricks_api_base`` with the client id and secret as HTTP Basic
credentials; the shipped prices of the model still apply. The credentials live only in the job's request
(erased when the job ends) and in the route object of the running job: never in a file, a log or an answer.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from importlib import resources
from typing import Any

import yaml

from datamill.core.dataframer_models import DATABRICKS_PREFIX
from datamill.llm.gateway import Gateway, ModelHandle
from datamill.llm.routing import Routing
from datamill.llm.types import Route


def databricks_route(name: str, credentials: Mapping[str, str]) -> Route:
    """The route of `name` at the credentials' API base, authenticated with the client id and secret."""
    pair = f"{credentials['databricks_client_id']}:{credentials['databricks_client_secret']}"
    token = base64.b64encode(pair.encode("utf-8")).decode("ascii")
    entry: dict[str, Any] = {
        "provider": "openai",
        "base_url": credentials["databricks_api_base"].rstrip("/"),
        "api_key_env": None,
        "model": "{suffix}",
        "headers": {"Authorization": f"Basic {token}"},
    }
    routes: dict[str, Any] = {f"{DATABRICKS_PREFIX}*": entry}
    shipped = yaml.safe_load(resources.files("datamill.llm").joinpath("routes.yaml").read_text("utf-8"))
    prices = (shipped.get("routes") or {}).get(name)
    if isinstance(prices, Mapping):
        routes[name] = {k: v for k, v in prices.items() if k in ("input_price", "output_price")}
    return Routing.from_dict({"routes": routes}, source="run credentials").resolve(name)


def model_handle(
    gateway: Gateway, name: str | None, role: str, credentials: Mapping[str, str]
) -> ModelHandle:
    """A handle on `name` (the role's model when None), through the run's credentials for Databricks."""
    if name and name.startswith(DATABRICKS_PREFIX) and credentials:
        return ModelHandle(gateway, name, databricks_route(name, credentials))
    return gateway.model(name) if name else gateway.role(role)
