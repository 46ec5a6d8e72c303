"""Where uploaded documents live: local disk by default, behind a small interface so that an
operator can put an object store behind it."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Protocol

_SAFE_NAME = re.compile(r"^[0-9a-f]{32}\.(pdf|png|jpg)$")


class Storage(Protocol):
    def put(self, name: str, content: bytes) -> None: ...

    def get(self, name: str) -> bytes: ...


class LocalStorage:
    """Files under one folder, named by the server (never by the client), written atomically."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, name: str) -> Path:
        if not _SAFE_NAME.match(name):
            raise ValueError(f"not a stored document name: {name!r}")
        return self.root / name[:2] / name

    def put(self, name: str, content: bytes) -> None:
        path = self._path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".part")
        with open(tmp, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)

    def get(self, name: str) -> bytes:
        return self._path(name).read_bytes()
