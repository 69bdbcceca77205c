"""The validated project of a long-lived process, read again only when its inputs change.

A Functions worker runs many invocations; reading and validating the manifests on each one was a
large share of a small message's time (docs/benchmarks.md), so the worker keeps the last result.
Its inputs are the manifest files (keyed on name, size, mtime, ctime and inode: nothing is read
while they stand still) and the environment variables the load reads (the KSPYDER_* overrides and
every `${VAR}` the files name). A Project is immutable, so sharing it carries no state between
invocations.
Invalid manifests are cached too: their issues are raised again, in a new ConfigError each time.

What is read from the same folder on the project's behalf (transformations.yml, aggregations.yml)
is kept with it (`derived`): those files are among the inputs the key covers, so one key serves all.
"""
from __future__ import annotations

import hashlib
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

from shared.config.errors import ConfigError, ConfigIssue
from shared.config.project import Project, load_project, manifests_dir
from shared.config.settings import ENV_OVERRIDES
from shared.config.yaml_source import MAX_FILE_MB, referenced_env

# Two writes closer together than the clock's step can leave a file with the same mtime and size
# (git calls such an index entry "racily clean"): a load this soon after a change also keeps a
# digest of the files' bytes, compared until the files are older than this.
RACY_NS = 2_000_000_000
_SUFFIXES = (".yml", ".yaml")
T = TypeVar("T")


@dataclass
class _Entry:
    root: str
    stats: tuple
    names: tuple[str, ...]
    values: tuple
    digest: bytes | None
    project: Project | None
    issues: list[ConfigIssue] | None
    derived: dict[str, tuple[Any, list[ConfigIssue] | None]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def derive(self, name: str, build: Callable[[], T]) -> T:
        """`build()` once for this entry; its ConfigError is kept too, and raised anew each time."""
        with self.lock:   # concurrent invocations wait for one build rather than each do it
            if name not in self.derived:
                try:
                    self.derived[name] = (build(), None)
                except ConfigError as exc:
                    self.derived[name] = (None, exc.issues)
            value, issues = self.derived[name]
        if issues is not None:
            raise ConfigError(issues)
        return cast(T, value)


_caches: weakref.WeakSet[ProjectCache] = weakref.WeakSet()


def derived(project: Project, name: str, build: Callable[[], T]) -> T:
    """`build()`, kept with `project` when a ProjectCache holds it (as long as it does: a change
    to any manifest file or variable makes a new project); else built on every call."""
    for cache in list(_caches):
        entry = cache._entry
        if entry is not None and entry.project is project:
            return entry.derive(name, build)
    return build()


class ProjectCache:
    """`get()`: `load_project()` for the folder KSPYDER_MANIFESTS names, from the cache when nothing changed."""

    def __init__(self, loader: Callable[[Path, dict], Project] = load_project):
        self._loader = loader
        self._lock = threading.Lock()
        self._entry: _Entry | None = None
        self.loads = 0
        _caches.add(self)

    def get(self, env: Mapping[str, str] | None = None) -> Project:
        env = dict(os.environ if env is None else env)
        root = manifests_dir(None, env)
        try:
            stats = _stats(root)
        except OSError:   # no folder, or unreadable: load_project says which, with its own message
            return self._load(root, env)
        with self._lock:
            entry = self._entry
            if entry is None or not self._unchanged(entry, root, stats, env):
                entry = self._entry = self._read(root, stats, env)
        if entry.project is None:
            raise ConfigError(entry.issues or [])
        return entry.project

    def clear(self) -> None:
        with self._lock:
            self._entry = None

    def _unchanged(self, entry: _Entry, root: Path, stats: tuple, env: dict) -> bool:
        if entry.root != str(root) or entry.stats != stats or entry.values != _values(entry.names, env):
            return False
        if entry.digest is None:
            return True
        try:
            contents = _contents(root, stats)
        except OSError:
            return False
        if _digest(contents) != entry.digest:
            return False
        if not _racy(stats, time.time_ns()):
            entry.digest = None   # old enough now: stats alone tell a change from here on
        return True

    def _read(self, root: Path, stats: tuple, env: dict) -> _Entry:
        started = time.time_ns()
        try:
            contents = _contents(root, stats)
        except OSError:
            contents = {}
        referenced = (referenced_env(text.decode("utf-8", "replace")) for text in contents.values())
        names = sorted(set(ENV_OVERRIDES).union(*referenced))
        project, issues = None, None
        try:
            project = self._load(root, env)
        except ConfigError as exc:
            issues = exc.issues
        digest = _digest(contents) if _racy(stats, started) else None
        return _Entry(str(root), stats, tuple(names), _values(names, env), digest, project, issues)

    def _load(self, root: Path, env: dict) -> Project:
        self.loads += 1
        return self._loader(root, env)


def _stats(root: Path) -> tuple:
    found = []
    for path in root.iterdir():
        if path.suffix in _SUFFIXES:
            st = path.stat()
            found.append((path.name, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino))
    return tuple(sorted(found))


def _contents(root: Path, stats: tuple) -> dict[str, bytes]:
    """The files' bytes; one over the size limit is refused unread by the loader, and left out here."""
    return {name: (root / name).read_bytes() for name, size, *_ in stats if size <= MAX_FILE_MB * 1024 * 1024}


def _digest(contents: dict[str, bytes]) -> bytes:
    digest = hashlib.sha256()
    for name in sorted(contents):
        digest.update(name.encode() + b"\0" + contents[name] + b"\0")
    return digest.digest()


def _racy(stats: tuple, now_ns: int) -> bool:
    return any(now_ns - max(mtime, ctime) < RACY_NS for _, _, mtime, ctime, _ in stats)


def _values(names: Iterable[str], env: Mapping[str, str]) -> tuple:
    return tuple(env.get(name) for name in names)
