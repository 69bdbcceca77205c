"""`BlobStore` on a local folder: `<root>/<container>/<name>`. Writes go to a temporary file
renamed into place; `create` uses O_EXCL, which is atomic on local file systems."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


class LocalBlobStore:
    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def _path(self, container: str, name: str) -> Path:
        if not container or "/" in container or container.startswith("."):
            raise ValueError(f"invalid container name '{container}'")
        parts = Path(name).parts
        if not name or Path(name).is_absolute() or ".." in parts:
            raise ValueError(f"invalid blob name '{name}'")
        return self.root / container / name

    def put(self, container: str, name: str, data: bytes) -> None:
        path = self._path(container, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def create(self, container: str, name: str, data: bytes) -> bool:
        path = self._path(container, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        return True

    def get(self, container: str, name: str) -> bytes | None:
        try:
            return self._path(container, name).read_bytes()
        except FileNotFoundError:
            return None

    def list(self, container: str, prefix: str = "") -> list[str]:
        base = self.root / container
        if not base.is_dir():
            return []
        names = (p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file() and not p.name.startswith("."))
        return sorted(n for n in names if n.startswith(prefix))

    def delete(self, container: str, name: str) -> None:
        self._path(container, name).unlink(missing_ok=True)
