"""Routes for ``databricks/`` models that one run brings its own workspace credentials for.

The Dataframer API takes ``databricks_client_id``, ``databricks_client_secret`` and ``databricks_api_base``
with a run that uses a ``databricks/`` model. Such a model is then served, for that run only, by the
OpenAI-compatible endpoint at ``databricks_api_base`` with the client id and secret as HTTP Basic
credentials; the shipped prices of the model still apply. The credentials live only in the job's request
(erased when the job ends) and in the route object of the running job: never in a file, a log or an answer.

The API base is a URL the tenant named, so the route carries the outbound-URL policy
(`datamill.text.fetch_policy`): its calls connect directly and only to addresses the policy passes (no
loopback, private, link-local or metadata address unless ``DATAMILL_FETCH_ALLOW`` allows it), checked on
the addresses each connection dials, and never through a provider batch.
"""

from __future__ import annotations

import base64
import dataclasses
import ipaddress
import socket
from collections.abc import Mapping
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import yaml

from datamill.core.dataframer_models import DATABRICKS_PREFIX
from datamill.llm.gateway import Gateway, ModelHandle
from datamill.llm.routing import Routing
from datamill.llm.types import Route
from datamill.text.fetch_policy import FetchPolicy


def literal_refusal(url: str, policy: FetchPolicy) -> str | None:
    """Why `policy` refuses `url` when its host is an address, in any spelling, that it forbids.

    The spellings are those the C resolver reads as numbers (``127.1``, ``2130706433``, ``0x7f000001``,
    ``[::ffff:127.0.0.1]``); a host name is judged when a connection is made. None when nothing is refused.
    """
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    if not host:
        return None
    try:  # the numeric forms the C resolver accepts, without asking DNS
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    except (socket.gaierror, UnicodeError):
        return None
    for info in infos:
        reason = policy.refusal(host, ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]))
        if reason is not None:
            return reason
    return None


def databricks_route(name: str, credentials: Mapping[str, str], policy: FetchPolicy) -> Route:
    """The route of `name` at the credentials' API base, authenticated with the client id and secret.

    Its connections go only where `policy` allows.
    """
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
    route = Routing.from_dict({"routes": routes}, source="run credentials").resolve(name)
    return dataclasses.replace(route, address_check=policy.refusal, batch=False, proxy="none")


def model_handle(
    gateway: Gateway, name: str | None, role: str, credentials: Mapping[str, str], policy: FetchPolicy
) -> ModelHandle:
    """A handle on `name` (the role's model when None), through the run's credentials for Databricks.

    `policy` decides where a tenant-named API base may be reached.
    """
    if name and name.startswith(DATABRICKS_PREFIX) and credentials:
        return ModelHandle(gateway, name, databricks_route(name, credentials, policy))
    return gateway.model(name) if name else gateway.role(role)
