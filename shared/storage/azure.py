"""`BlobStore` on Azure Blob Storage (or Azurite), with the same semantics as `LocalBlobStore`.

The conditional create is an upload with `If-None-Match: *`: the service, not the caller, decides
which of several racing writers wins, which is what makes "exactly once" ledger decisions hold
across function instances.

Settings follow the Functions host's `AzureWebJobsStorage` conventions, so the app reaches the
same account the host itself uses, with a connection string or with a managed identity.
"""
from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobServiceClient, ContainerClient

SETTING = "AzureWebJobsStorage"
_CONTAINER_NAME = re.compile(r"^(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
# Set on every conditional create, so a writer whose first attempt succeeded but whose response was
# lost (and whose retry then met its own blob) still knows that it won.
_CREATE_MARK = "kspydercreate"


def storage_credential(env: Mapping[str, str]) -> Any:
    """The identity the Functions host would use: a user-assigned one when a client id is set."""
    from azure.identity import (  # slow; only identity-based setups pay it
        DefaultAzureCredential,
        ManagedIdentityCredential,
    )

    client_id = env.get(f"{SETTING}__clientId", "").strip()
    if client_id:
        return ManagedIdentityCredential(client_id=client_id)
    if env.get(f"{SETTING}__credential", "").strip().lower() == "managedidentity":
        return ManagedIdentityCredential()
    return DefaultAzureCredential()


def storage_settings(env: Mapping[str, str], service: str) -> tuple[str, None] | tuple[None, str]:
    """(connection string, service URL) for `service` ("blob" or "queue"): exactly one is set.

    Read in the host's order: a connection string in `AzureWebJobsStorage`, else the identity-based
    `AzureWebJobsStorage__<service>ServiceUri`, else `AzureWebJobsStorage__accountName`.
    """
    connection = env.get(SETTING, "").strip()
    if connection:
        return connection, None
    uri = env.get(f"{SETTING}__{service}ServiceUri", "").strip()
    if uri:
        return None, uri
    account = env.get(f"{SETTING}__accountName", "").strip()
    if account:
        return None, f"https://{account}.{service}.core.windows.net"
    raise ValueError(
        f"Azure Storage is not configured: set {SETTING} (a connection string), "
        f"or {SETTING}__{service}ServiceUri or {SETTING}__accountName (managed identity, "
        f"optionally with {SETTING}__clientId for a user-assigned identity)"
    )


def check_container(container: str) -> None:
    if not container or "/" in container or container.startswith("."):
        raise ValueError(f"invalid container name '{container}'")
    if not _CONTAINER_NAME.match(container):
        raise ValueError(
            f"invalid container name '{container}': Azure wants 3-63 lowercase letters, digits and single hyphens"
        )


def check_blob_name(name: str) -> None:
    """The local store's rule, so a name that works in one mode works in the other."""
    path = PurePosixPath(name)
    if not name or path.is_absolute() or ".." in path.parts:
        raise ValueError(f"invalid blob name '{name}'")


class AzureBlobStore:
    def __init__(self, service: BlobServiceClient):
        self.service = service

    @classmethod
    def from_connection_string(cls, connection_string: str) -> AzureBlobStore:
        return cls(BlobServiceClient.from_connection_string(connection_string))

    @classmethod
    def from_account_url(cls, account_url: str, credential: Any) -> AzureBlobStore:
        return cls(BlobServiceClient(account_url, credential=credential))

    @classmethod
    def from_settings(cls, env: Mapping[str, str]) -> AzureBlobStore:
        address = storage_settings(env, "blob")
        if address[0] is not None:
            return cls.from_connection_string(address[0])
        return cls.from_account_url(address[1], storage_credential(env))

    def _container(self, container: str) -> ContainerClient:
        check_container(container)
        return self.service.get_container_client(container)

    def _create_container(self, client: ContainerClient) -> None:
        try:
            client.create_container()
        except ResourceExistsError:
            pass

    def _upload(self, container: str, name: str, data: bytes, overwrite: bool, metadata: dict[str, str] | None) -> None:
        """Containers are created on first use: try the write, create the container only when
        the service says it is missing, so the steady state costs one request."""
        check_blob_name(name)
        client = self._container(container)
        try:
            client.upload_blob(name, data, overwrite=overwrite, metadata=metadata)
        except ResourceNotFoundError:
            self._create_container(client)
            client.upload_blob(name, data, overwrite=overwrite, metadata=metadata)

    def put(self, container: str, name: str, data: bytes) -> None:
        self._upload(container, name, data, True, None)

    def create(self, container: str, name: str, data: bytes) -> bool:
        token = secrets.token_hex(16)
        try:
            self._upload(container, name, data, False, {_CREATE_MARK: token})
        except ResourceExistsError:
            try:
                props = self._container(container).get_blob_client(name).get_blob_properties()
            except ResourceNotFoundError:
                return False
            return (props.metadata or {}).get(_CREATE_MARK) == token
        return True

    def get(self, container: str, name: str) -> bytes | None:
        check_blob_name(name)
        try:
            return self._container(container).download_blob(name).readall()
        except ResourceNotFoundError:
            return None

    def list(self, container: str, prefix: str = "") -> list[str]:
        """Names whose last segment starts with '.' are left out, as the local store leaves out its
        temporary files: both modes list the same names."""
        client = self._container(container)
        try:
            names = list(client.list_blob_names(name_starts_with=prefix or None))   # names only: no properties to parse
        except ResourceNotFoundError:
            return []
        return sorted(n for n in names if not PurePosixPath(n).name.startswith("."))

    def delete(self, container: str, name: str) -> None:
        check_blob_name(name)
        try:
            self._container(container).delete_blob(name)
        except ResourceNotFoundError:
            pass
