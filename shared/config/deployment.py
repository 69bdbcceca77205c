"""What a project needs before it runs in Azure (`storage.mode: azure`, set by the function app).

- A `store: mongo` source needs a MongoDB server there (`mongo_uri`): the embedded document store is a
  folder of the instance, which Flex Consumption discards on scale-in, and Load and transform run on
  different instances, so documents would silently vanish. A configuration error, never a fallback.
- Sources and targets on loopback addresses or in local files are the demo's: `GET /api/health`
  reports them as not deployable (`local_addresses`), so a deployment of the sample manifests does
  not answer "ok".
"""
from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from shared.config.errors import ConfigIssue
from shared.config.settings import Settings
from shared.config.yaml_source import YamlDocument

LOCAL_HOSTS = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}
FILE_DATABASES = {"sqlite", "duckdb"}


def document_store_issues(doc: YamlDocument, sources: dict[str, Any], settings: Settings) -> list[ConfigIssue]:
    """Each `store: mongo` source, in Azure without `mongo_uri`, is an error at its `store` key."""
    if settings.storage.mode != "azure" or settings.mongo_uri:
        return []
    return [doc.issue(("sources", name, "store"),
                      "store: mongo needs a MongoDB server in Azure: set KSPYDER_MONGO_URI (DEPLOY_COSMOS_MONGO=true "
                      "deploys Cosmos DB for MongoDB); the embedded document store is a folder of one instance, lost "
                      "on scale-in and not shared between instances")
            for name, source in sources.items() if getattr(source, "store", "sql") == "mongo"]


def is_local_host(host: str | None) -> bool:
    """Loopback, unspecified or `localhost` names: nothing an Azure instance can reach."""
    if not host:
        return False
    host = host.strip("[]").lower().rstrip(".")
    if host in LOCAL_HOSTS or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def local_address(url: str) -> str | None:
    """Why `url` (HTTP or SQLAlchemy) is not reachable from Azure: "a local file" or "a loopback
    address"; None when it may be. Never returns the URL itself (it can hold a password)."""
    if url.startswith(("http://", "https://")):
        return "a loopback address" if is_local_host(urlsplit(url).hostname) else None
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    if parsed.get_backend_name() in FILE_DATABASES:
        return "a local file"
    return "a loopback address" if is_local_host(parsed.host) else None


def local_addresses(project: Any) -> list[str]:
    """`source <name>: <url setting> is <why>` for every source, and the target, that only works
    on the machine the manifests were written on."""
    problems = []
    for name, source in project.sources.items():
        field = "base_url" if hasattr(source, "base_url") else "url" if hasattr(source, "url") else None
        reason = local_address(getattr(source, field)) if field else None
        if reason:
            problems.append(f"source {name}: {field} is {reason}, not reachable from Azure")
    reason = local_address(project.settings.target_url)
    if reason:
        problems.append(f"target_url (KSPYDER_TARGET_URL) is {reason}, not reachable from Azure")
    return problems
