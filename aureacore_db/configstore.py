"""Service files on disk: atomic writes and a small cache that is never stale.

A :class:`ConfigStore` addresses files by *name*, a path relative to its base folder
with or without the suffix (``platform/auth-service`` finds
``platform/auth-service.yaml``, ``.yml`` or ``.json``). Writes go to a temporary file
in the same folder, are fsynced and renamed over the target (then the folder is
fsynced), so a reader or a crash sees the old file or the new one, never a mix.
The cache is keyed by the file's ``(path, mtime_ns, size, inode, ctime_ns)``: any
write, by this process or another, changes the key, so a cached value is never stale.
"""

from __future__ import annotations

import os
import tempfile
from collections import OrderedDict
from pathlib import Path

from .models import ConfigError, ServiceConfig
from .parsing import CONFIG_SUFFIXES, file_format

CACHE_SIZE = 256

_Key = tuple[int, int, int, int]


class ConfigStore:
    """Load, save and list service config files below ``base_path``."""

    def __init__(self, base_path: str | os.PathLike[str], *, cache_size: int = CACHE_SIZE,
                 fsync: bool = True) -> None:
        self.base_path = Path(base_path)
        self.cache_size = cache_size
        self.fsync = fsync
        self._cache: OrderedDict[Path, tuple[_Key, ServiceConfig]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    # -- names ----------------------------------------------------------------
    def path_for(self, name: str, *, existing_only: bool = False) -> Path:
        """The file a name stands for (an existing file with any config suffix first).

        Raises :class:`ConfigError` for names that leave the base folder.
        """
        rel = Path(name)
        if rel.is_absolute() or ".." in rel.parts or not name.strip() or "\0" in name:
            raise ConfigError(f"config name {name!r} must be a relative path inside "
                              f"{self.base_path}")
        if name.lower().endswith(CONFIG_SUFFIXES):
            return self.base_path / rel
        for suffix in CONFIG_SUFFIXES:
            candidate = self.base_path / f"{name}{suffix}"
            if candidate.exists():
                return candidate
        if existing_only:
            raise FileNotFoundError(f"no config named {name!r} in {self.base_path}")
        return self.base_path / f"{name}.yaml"

    def list_configs(self) -> list[str]:
        """Names (relative paths without suffix) of every config file, sorted."""
        if not self.base_path.is_dir():
            return []
        names = []
        for root, dirs, files in os.walk(self.base_path):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for file in files:
                if file.lower().endswith(CONFIG_SUFFIXES) and not file.startswith("."):
                    rel = Path(root, file).relative_to(self.base_path).as_posix()
                    names.append(rel.rsplit(".", 1)[0])
        return sorted(names)

    # -- reading --------------------------------------------------------------
    def load_config(self, name: str) -> ServiceConfig:
        """The config stored under ``name`` (a fresh copy; mutate it freely)."""
        path = self.path_for(name, existing_only=True)
        key = _stat_key(path)
        cached = self._cache.get(path)
        if cached is not None and cached[0] == key:
            self.hits += 1
            self._cache.move_to_end(path)
            return cached[1].copy()
        self.misses += 1
        data = path.read_bytes()
        # A write between stat and read changes the key; re-stat so we never cache
        # new bytes under the old key.
        config = ServiceConfig.loads(data, path.name)
        if _stat_key(path) == key:
            self._remember(path, key, config)
        return config.copy()

    # -- writing --------------------------------------------------------------
    def save_config(self, name: str, config: ServiceConfig, fmt: str | None = None) -> Path:
        """Write ``config`` atomically; returns the path. Format from the suffix unless given."""
        path = self.path_for(name)
        text = config.dumps(fmt or file_format(path.name))
        atomic_write(path, text.encode("utf-8"), fsync=self.fsync)
        self._remember(path, _stat_key(path), config.copy())
        return path

    def delete_config(self, name: str) -> None:
        path = self.path_for(name, existing_only=True)
        path.unlink()
        self._cache.pop(path, None)

    def _remember(self, path: Path, key: _Key, config: ServiceConfig) -> None:
        self._cache[path] = (key, config)
        self._cache.move_to_end(path)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)


def _stat_key(path: Path) -> _Key:
    st = path.stat()
    return (st.st_mtime_ns, st.st_size, st.st_ino, st.st_ctime_ns)


def atomic_write(path: Path, data: bytes, *, fsync: bool = True) -> None:
    """Replace ``path`` with ``data``: temp file in the same folder, fsync, rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if fsync:
                os.fsync(handle.fileno())
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if fsync:
        _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
