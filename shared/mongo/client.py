"""Where documents live: a MongoDB server (or Cosmos DB for MongoDB) when `mongo_uri` is set, else
an embedded store on disk, so a laptop without servers runs `store: mongo` sources and aggregations.

The embedded store is mongomock (MongoDB's query and aggregation language in memory) whose
collections are read from `<state_dir>/documents/<database>/<collection>.jsonl` (and its indexes
from `<collection>.indexes.json`) when opened and
written back when flushed or closed: one MongoDB Extended JSON (relaxed) document per line, so
datetimes, decimals and ObjectIds come back with their types. Each changed collection is rewritten
whole, through a temporary file and a rename, so a crash leaves the old file or the new one, never
half of one. It is meant for small and demo data: every collection is held in memory, and one client
at a time may have the folder open (others, in any thread or process, wait up to `LOCK_WAIT`), so
keep clients short-lived and use a MongoDB server for large data or many parallel workers.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import mongomock

try:
    import fcntl
    _FLOCK = True
except ImportError:   # Windows: no advisory locks; the embedded store is then one process's only
    _FLOCK = False
import pymongo
import pymongo.common
import pymongo.errors
from bson import json_util

from shared.config.settings import Settings

DOCUMENTS_DIR = "documents"
SUFFIX = ".jsonl"
INDEXES_SUFFIX = ".indexes.json"
# Relaxed Extended JSON keeps numbers and strings plain and tags only what JSON lacks ($date, ...).
_JSON = json_util.RELAXED_JSON_OPTIONS.with_options(tz_aware=True)
SERVER_TIMEOUT_MS = 10_000
LOCK_WAIT = 120.0   # seconds to wait for another user of the embedded store to close it
# The oldest server the installed pymongo speaks to (wire version 9 = MongoDB 4.4 for pymongo 4.x).
MIN_WIRE_VERSION = pymongo.common.MIN_SUPPORTED_WIRE_VERSION
MIN_SERVER_VERSION = pymongo.common.MIN_SUPPORTED_SERVER_VERSION

log = logging.getLogger("kspyder.mongo")
_servers_checked: set[str] = set()   # URIs (hashed) whose server version this process has checked
_checked_lock = threading.Lock()


class DocumentStoreError(Exception):
    """The document store cannot be opened or written. Names files and URIs (masked), never documents."""


def open_documents(settings: Settings) -> Any:
    """A pymongo `MongoClient` for `settings.mongo_uri`, else the embedded `PersistedMongoClient`.

    Both are used the same way (`client[database][collection]`, `with client: ...`); close the
    client when done: for the embedded store, closing is what writes the changes to disk.
    In Azure (`storage.mode: azure`) there is no embedded store: its folder would be one instance's,
    lost on scale-in (config/deployment.py refuses such manifests; this is the last guard)."""
    if settings.mongo_uri:
        client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(
            settings.mongo_uri, tz_aware=True, serverSelectionTimeoutMS=SERVER_TIMEOUT_MS)
        try:
            check_server_once(client, settings.mongo_uri)
        except BaseException:
            client.close()
            raise
        return client
    if settings.storage.mode == "azure":
        raise DocumentStoreError("document store: no MongoDB server in Azure: set KSPYDER_MONGO_URI (the embedded "
                                 "store would be one instance's folder, lost on scale-in)")
    return PersistedMongoClient(Path(settings.state_dir) / DOCUMENTS_DIR)


def check_server_once(client: Any, uri: str) -> None:
    """`check_server` on the first client of each URI in this process (a worker's startup)."""
    key = hashlib.sha256(uri.encode("utf-8")).hexdigest()
    with _checked_lock:
        if key in _servers_checked:
            return
    if check_server(client) is not None:
        with _checked_lock:
            _servers_checked.add(key)


def check_server(client: Any) -> int | None:
    """Log the server's wire version and refuse one older than the driver supports, with the fix
    (Cosmos DB for MongoDB: server version 6.0 or newer). Returns the wire version; None when the
    server cannot be reached (not checked)."""
    try:
        hello = client.admin.command("hello")
    except pymongo.errors.ConfigurationError as exc:   # pymongo's own refusal of an old server
        if "wire version" not in str(exc):
            raise DocumentStoreError(f"document store: {_first_line(exc)}") from None
        raise DocumentStoreError(_too_old("below")) from None
    except pymongo.errors.ConnectionFailure:
        return None   # unreachable now: the first operation reports it, and the next client checks again
    wire = int(hello.get("maxWireVersion", 0))
    log.info("document store: MongoDB server wire version %d (this pymongo needs %d or newer)", wire, MIN_WIRE_VERSION)
    if wire < MIN_WIRE_VERSION:
        raise DocumentStoreError(_too_old(f"{wire}, below"))
    return wire


def _too_old(wire: str) -> str:
    return (f"document store: the MongoDB server's wire version is {wire} this pymongo's minimum {MIN_WIRE_VERSION} "
            f"(MongoDB {MIN_SERVER_VERSION}): upgrade the server; for Cosmos DB for MongoDB, set its server version "
            "to 6.0 or newer (infra cosmosServerVersion, or the account's Features blade)")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def drop_databases(settings: Settings, names: list[str]) -> None:
    """Drop the document databases of these sources (`rebuild`): reloading them starts from nothing."""
    try:
        with open_documents(settings) as client:
            for name in names:
                client.drop_database(name)
    except pymongo.errors.PyMongoError as exc:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DocumentStoreError(f"document store: dropping {', '.join(names)} failed: {text[:200]}") from None


def is_embedded(client: Any) -> bool:
    return isinstance(client, PersistedMongoClient)


class _FolderLock:
    """Held from open to close of an embedded client, so two clients never read-modify-write the
    same files at once: across threads (re-entrant within one thread, for nested opens) and across
    processes (an advisory `flock` on `<folder>/.lock`, where the platform has it)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._threads = threading.RLock()
        self._depth = 0
        self._fd: int | None = None

    def acquire(self) -> None:
        if not self._threads.acquire(timeout=LOCK_WAIT):
            raise DocumentStoreError(f"embedded document store {self.folder} is busy in this process "
                                     f"for more than {LOCK_WAIT:.0f}s")
        try:
            if self._depth == 0 and _FLOCK:
                self.folder.mkdir(parents=True, exist_ok=True)
                self._fd = _flock(self.folder / ".lock")
            self._depth += 1
        except BaseException:
            self._threads.release()
            raise

    def release(self) -> None:
        self._depth -= 1
        if self._depth == 0 and self._fd is not None:
            fd, self._fd = self._fd, None
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        self._threads.release()


def _flock(path: Path) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + LOCK_WAIT
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() > deadline:
                os.close(fd)
                raise DocumentStoreError(
                    f"embedded document store {path.parent} is in use by another process "
                    f"(waited {LOCK_WAIT:.0f}s): wait for it, or use a server (mongo_uri)") from None
            time.sleep(0.05)


_LOCKS: dict[Path, _FolderLock] = {}
_LOCKS_GUARD = threading.Lock()


def _folder_lock(folder: Path) -> _FolderLock:
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(folder.resolve(), _FolderLock(folder))


class PersistedMongoClient(mongomock.MongoClient):
    """mongomock with its collections loaded from, and flushed to, one folder. The folder is
    locked from open to close (see `_FolderLock`): keep clients short-lived."""

    def __init__(self, folder: str | os.PathLike):
        super().__init__(tz_aware=True)
        self.folder = Path(folder)
        self._digests: dict[tuple[str, str], str] = {}
        self._held: _FolderLock | None = _folder_lock(self.folder)
        self._held.acquire()
        try:
            self._load()
        except BaseException:
            self._release()
            raise

    def _release(self) -> None:
        lock, self._held = self._held, None
        if lock is not None:
            lock.release()

    def _load(self) -> None:
        if not self.folder.is_dir():
            return
        for db_dir in sorted(p for p in self.folder.iterdir() if p.is_dir()):
            for path in sorted(db_dir.glob("*" + SUFFIX)):
                text = path.read_text(encoding="utf-8")
                collection = self[db_dir.name][path.name[: -len(SUFFIX)]]
                documents = []
                for number, line in enumerate(text.splitlines(), 1):
                    if not line.strip():
                        continue
                    try:
                        documents.append(json_util.loads(line, json_options=_JSON))
                    except ValueError:
                        raise DocumentStoreError(
                            f"embedded document store: {path}:{number} is not Extended JSON") from None
                if documents:
                    collection.insert_many(documents)
                else:
                    self[db_dir.name].create_collection(collection.name)
                indexes = path.with_name(path.name[: -len(SUFFIX)] + INDEXES_SUFFIX)
                if indexes.exists():
                    specs = indexes.read_text(encoding="utf-8")
                    try:
                        for spec in json.loads(specs):
                            keys = [(field, direction) for field, direction in spec["key"]]
                            collection.create_index(keys, name=spec["name"], unique=spec["unique"])
                    except (ValueError, KeyError, TypeError):
                        raise DocumentStoreError(f"embedded document store: {indexes} is not an index list") from None
                    text += specs
                self._digests[(db_dir.name, collection.name)] = _digest(text)

    def flush(self) -> None:
        """Write every collection that changed since it was read (or last flushed), drop the files
        of dropped collections and databases. Unchanged collections are not rewritten."""
        current: dict[tuple[str, str], str] = {}
        for db_name in self.list_database_names():
            database = self[db_name]
            for name in database.list_collection_names():
                text = "".join(json_util.dumps(doc, json_options=_JSON) + "\n" for doc in database[name].find())
                indexes = _index_specs(database[name])
                key = (db_name, name)
                current[key] = digest = _digest(text + indexes)
                if self._digests.get(key) != digest:
                    _write_atomically(self.folder / db_name / (name + SUFFIX), text)
                    _write_atomically(self.folder / db_name / (name + INDEXES_SUFFIX), indexes)
        for db_name, name in set(self._digests) - set(current):
            (self.folder / db_name / (name + SUFFIX)).unlink(missing_ok=True)
            (self.folder / db_name / (name + INDEXES_SUFFIX)).unlink(missing_ok=True)
            db_dir = self.folder / db_name
            if db_dir.is_dir() and not any(db_dir.iterdir()):
                shutil.rmtree(db_dir, ignore_errors=True)
        self._digests = current

    def close(self) -> None:
        """Write the changes and unlock; a second close does nothing."""
        if self._held is None:
            return
        try:
            self.flush()
        finally:
            self._release()
            super().close()


def _index_specs(collection: Any) -> str:
    """The collection's indexes (other than _id's) as JSON text: persisted beside its documents."""
    specs = [{"name": name, "key": [list(k) for k in info["key"]], "unique": bool(info.get("unique"))}
             for name, info in collection.index_information().items() if name != "_id_"]
    return json.dumps(specs, sort_keys=True)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise DocumentStoreError(f"embedded document store: cannot write {path}: {exc.strerror or exc}") from None
