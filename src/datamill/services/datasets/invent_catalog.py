"""The catalogue of domain and subdomain codes that ``datasets.invent_domains`` lists.

The shipped catalogue is ``invent_domains.yaml`` beside this module. An operator extends it with a file of the
same shape, ``invent_domains.yaml`` in the server's data directory: a domain with a new code is added at the
end; one with a shipped code takes the operator's title (when given) and gains the operator's subdomains (a
subdomain with a shipped code is retitled). Codes are lower-case letters, digits and underscores; a
subdomain code is its domain's code, a dot, and its own part. The catalogue is read and checked when the
server starts, so a broken operator file stops it with a message naming the entry at fault.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from datamill.core.errors import ConfigError

FILE_NAME = "invent_domains.yaml"
_CODE = re.compile(r"^[a-z0-9_]{1,64}$")


@dataclass
class Domain:
    """One domain: its code, title and subdomains (code → title, in order)."""

    code: str
    title: str
    subdomains: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "title": self.title,
            "subdomains": [{"code": c, "title": t} for c, t in self.subdomains.items()],
        }


def _entries(data: Any, source: str) -> list[Domain]:
    if not isinstance(data, dict) or not isinstance(data.get("domains"), list):
        raise ConfigError(f"{source}: must be a mapping with a 'domains' list")
    domains = []
    for i, item in enumerate(data["domains"]):
        where = f"{source}: domains[{i}]"
        if not isinstance(item, dict):
            raise ConfigError(f"{where}: must be a mapping with code, title and subdomains")
        code, title = item.get("code"), item.get("title")
        if not isinstance(code, str) or not _CODE.match(code):
            raise ConfigError(
                f"{where}.code: must be lower-case letters, digits and underscores, got {code!r}"
            )
        if title is not None and (not isinstance(title, str) or not title.strip()):
            raise ConfigError(f"{where}.title: must be a non-empty string")
        domain = Domain(code, title or "")
        subs = item.get("subdomains") or []
        if not isinstance(subs, list):
            raise ConfigError(f"{where}.subdomains: must be a list")
        for j, sub in enumerate(subs):
            at = f"{where}.subdomains[{j}]"
            sub_code = sub.get("code") if isinstance(sub, dict) else None
            own = sub_code.partition(".")[2] if isinstance(sub_code, str) else ""
            if not isinstance(sub_code, str) or not sub_code.startswith(f"{code}.") or not _CODE.match(own):
                raise ConfigError(
                    f"{at}.code: must be '{code}.<part>' (lower-case letters, digits, _), got {sub_code!r}"
                )
            sub_title = sub.get("title")
            if not isinstance(sub_title, str) or not sub_title.strip():
                raise ConfigError(f"{at}.title: must be a non-empty string")
            domain.subdomains[sub_code] = sub_title
        domains.append(domain)
    return domains


def load_catalogue(data_dir: Path | None = None) -> list[Domain]:
    """The shipped catalogue, extended by the operator's file in `data_dir` when there is one.

    Raises:
        ConfigError: the operator's file cannot be read or breaks a rule (module docstring).
    """
    text = resources.files("datamill.services.datasets").joinpath(FILE_NAME).read_text(encoding="utf-8")
    merged = {d.code: d for d in _entries(yaml.safe_load(text), f"{FILE_NAME} (shipped)")}
    extra = data_dir / FILE_NAME if data_dir is not None else None
    if extra is not None and extra.exists():
        try:
            data = yaml.safe_load(extra.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{extra}: cannot be read as YAML: {exc}") from exc
        for domain in _entries(data, str(extra)):
            known = merged.get(domain.code)
            if known is None:
                if not domain.title:
                    raise ConfigError(f"{extra}: domain {domain.code!r} is new, so it needs a title")
                merged[domain.code] = domain
                continue
            known.title = domain.title or known.title
            known.subdomains.update(domain.subdomains)
    return list(merged.values())
