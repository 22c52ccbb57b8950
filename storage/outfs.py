"""An output root on object storage (``s3://bucket/prefix``): the writers' side of the one seam.

``as_path`` turns an output path into a ``pathlib.Path`` (a local root: exactly
today's code path, temporary + ``os.replace`` + ``fsync``) or an ``S3Path``: the
few ``pathlib`` operations the writers, markers, manifests and readers use
(``/``, ``name``, ``parent``, ``relative_to``, ``exists``, ``is_dir``, ``iterdir``,
``glob``, ``stat``, ``read_bytes``, ``write_bytes``, ``unlink``), served by
pyarrow's ``S3FileSystem`` (reads, listings) and boto3 (one ``PutObject`` per
object, deletes, the lock's conditional create). A ``PutObject`` is atomic, so
an object is written once at its final key (no temporary, no rename); a unit's
completion marker is written after all its outputs, as locally.

An ``S3Path`` has no ``__fspath__``: code that would ``open()`` one as a local
file fails loudly instead of writing next to the working folder. Endpoint,
region and credentials: ``storage.s3`` in the recipe, then the environment
(``storage.fs``); a path built from a bare string takes the process's output
store (the last one given, also after unpickling in a Ray worker).
"""

from __future__ import annotations

import io
import os
import posixpath
from functools import lru_cache
from pathlib import Path, PurePosixPath
from types import SimpleNamespace
from typing import Any, BinaryIO

from magicvl.storage.fs import ObjectStoreOptions, _glob_match, check_uri, filesystem, is_uri

_store: ObjectStoreOptions | None = None  # the output root's store in this process


def _remember(store: ObjectStoreOptions | None) -> None:
    global _store
    if store is not None:
        _store = store


class S3Path:
    """An object key under an output root, with the ``pathlib`` subset the output code uses."""

    __slots__ = ("key", "store")

    def __init__(self, uri: str, store: ObjectStoreOptions | None = None) -> None:
        check_uri(str(uri), "output path")
        key = posixpath.normpath(str(uri).split("://", 1)[1].strip("/"))
        object.__setattr__(self, "key", key)  # "bucket/a/b"
        object.__setattr__(self, "store", store if store is not None else _store)
        _remember(store)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("S3Path is immutable")

    def __reduce__(self):
        return (S3Path, (str(self), self.store))

    # -- pure path operations ------------------------------------------------------------------------
    def __str__(self) -> str:
        return f"s3://{self.key}"

    def __repr__(self) -> str:
        return f"S3Path({str(self)!r})"

    def as_posix(self) -> str:
        return str(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, S3Path) and other.key == self.key

    def __hash__(self) -> int:
        return hash(("s3", self.key))

    def __lt__(self, other: S3Path) -> bool:
        return self.key < other.key

    def __truediv__(self, other: str | PurePosixPath) -> S3Path:
        return S3Path(f"s3://{self.key}/{str(other).strip('/')}", self.store)

    @property
    def name(self) -> str:
        return posixpath.basename(self.key)

    @property
    def suffix(self) -> str:
        return PurePosixPath(self.name).suffix

    @property
    def stem(self) -> str:
        return PurePosixPath(self.name).stem

    @property
    def parts(self) -> tuple[str, ...]:
        return ("s3://", *self.key.split("/"))

    @property
    def parent(self) -> S3Path:
        up = posixpath.dirname(self.key)
        return S3Path(f"s3://{up}", self.store) if up else self

    @property
    def parents(self) -> list[S3Path]:
        out, p = [], self
        while p.parent != p:
            p = p.parent
            out.append(p)
        return out

    def with_name(self, name: str) -> S3Path:
        return self.parent / name

    def relative_to(self, other: S3Path | str) -> PurePosixPath:
        base = other.key if isinstance(other, S3Path) else S3Path(str(other)).key
        if self.key != base and not self.key.startswith(base + "/"):
            raise ValueError(f"{self} is not under {other}")
        return PurePosixPath(posixpath.relpath(self.key, base))

    def is_relative_to(self, other: S3Path | str) -> bool:
        try:
            self.relative_to(other)
        except ValueError:
            return False
        return True

    def is_absolute(self) -> bool:
        return True

    def resolve(self) -> S3Path:
        return self

    def expanduser(self) -> S3Path:
        return self

    # -- what is there ---------------------------------------------------------------------------------
    def _fs(self):
        return filesystem(self.store)

    def _info(self):
        return self._fs().get_file_info(self.key)

    def is_file(self) -> bool:
        from pyarrow.fs import FileType

        return self._info().type == FileType.File

    def is_dir(self) -> bool:
        from pyarrow.fs import FileType

        return "/" in self.key and self._info().type == FileType.Directory

    def exists(self) -> bool:
        from pyarrow.fs import FileType

        return self._info().type in (FileType.File, FileType.Directory)

    def stat(self) -> SimpleNamespace:
        """Size and Last-Modified of the object (``st_size``, ``st_mtime_ns``); FileNotFoundError if none."""
        from pyarrow.fs import FileType

        info = self._info()
        if info.type != FileType.File:
            raise FileNotFoundError(f"no object at {self}")
        return SimpleNamespace(st_size=info.size, st_mtime_ns=info.mtime_ns or 0, st_mtime=(info.mtime_ns or 0) / 1e9)

    def _list(self, recursive: bool) -> list:
        from pyarrow.fs import FileSelector

        return self._fs().get_file_info(FileSelector(self.key, recursive=recursive, allow_not_found=True))

    def iterdir(self) -> list[S3Path]:
        return sorted(S3Path(f"s3://{i.path}", self.store) for i in self._list(False))

    def glob(self, pattern: str) -> list[S3Path]:
        """Objects and prefixes ("folders") under this one whose relative key matches ``pattern``
        (``*`` within one level, ``**`` across levels)."""
        from pyarrow.fs import FileType

        found = []
        for i in self._list(True):
            rel = posixpath.relpath(i.path, self.key)
            if i.type in (FileType.File, FileType.Directory) and _glob_match(rel, pattern):
                found.append(S3Path(f"s3://{i.path}", self.store))
        return sorted(found)

    def rglob(self, pattern: str) -> list[S3Path]:
        return self.glob(f"**/{pattern}")

    # -- reading and writing ---------------------------------------------------------------------------
    def open(self, mode: str = "rb", encoding: str | None = None) -> BinaryIO | io.TextIOWrapper:
        """A buffered reader (``rb``) or text reader (``r``); objects are written whole (``write_bytes``)."""
        if mode not in ("r", "rb"):
            raise ValueError(f"{self}: objects are written whole (write_bytes), not opened with mode {mode!r}")
        raw = io.BufferedReader(self._fs().open_input_file(self.key), buffer_size=1 << 20)
        return raw if mode == "rb" else io.TextIOWrapper(raw, encoding=encoding or "utf-8")

    def read_bytes(self) -> bytes:
        with self._fs().open_input_file(self.key) as f:
            return f.readall()

    def read_text(self, encoding: str = "utf-8") -> str:
        return self.read_bytes().decode(encoding)

    def write_bytes(self, data: bytes | BinaryIO) -> None:
        """One ``PutObject``: the object appears whole or not at all."""
        bucket, key = self.key.split("/", 1)
        _client(*_where(self.store)).put_object(Bucket=bucket, Key=key, Body=data)

    def write_text(self, text: str, encoding: str = "utf-8") -> None:
        self.write_bytes(text.encode(encoding))

    def create(self, data: bytes) -> bool:
        """Write only if no object is at this key (``If-None-Match: *``); False if one already is."""
        from botocore.exceptions import ClientError

        bucket, key = self.key.split("/", 1)
        try:
            _client(*_where(self.store)).put_object(Bucket=bucket, Key=key, Body=data, IfNoneMatch="*")
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("PreconditionFailed", "ConditionalRequestConflict"):
                return False
            raise
        return True

    def unlink(self, missing_ok: bool = False) -> None:
        if not missing_ok and not self.is_file():
            raise FileNotFoundError(f"no object at {self}")
        bucket, key = self.key.split("/", 1)
        _client(*_where(self.store)).delete_object(Bucket=bucket, Key=key)

    def mkdir(self, parents: bool = False, exist_ok: bool = False) -> None:
        """Nothing to do: a prefix exists while an object is under it."""

    def rmdir(self) -> None:
        """Nothing to do: a prefix with no object under it is gone."""


OutPath = Path | S3Path


def as_path(path: str | Path | S3Path, store: ObjectStoreOptions | None = None) -> OutPath:
    """``path`` as a local ``Path`` or, for an ``s3://`` URI, an ``S3Path`` (``store``: how to reach it)."""
    if isinstance(path, S3Path):
        return path
    if is_uri(str(path)):
        return S3Path(str(path), store)
    return Path(path)


def is_remote(path: object) -> bool:
    return isinstance(path, S3Path) or (isinstance(path, str) and is_uri(path))


def parquet_source(path: str | Path | S3Path):
    """What pyarrow's Parquet readers open: the local path itself, or a random-access S3 file."""
    p = as_path(path)
    return p._fs().open_input_file(p.key) if isinstance(p, S3Path) else path


def _where(store: ObjectStoreOptions | None) -> tuple[str | None, str | None, bool]:
    store = store or ObjectStoreOptions()
    env = os.environ
    endpoint = store.endpoint_url or env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    region = store.region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    return endpoint, region, store.anonymous


@lru_cache(maxsize=8)
def _client(endpoint: str | None, region: str | None, anonymous: bool):
    """A boto3 S3 client (writes, deletes, conditional creates); boto3 is the ``s3`` extra."""
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        raise RuntimeError("writing outputs to s3:// needs boto3: pip install 'magicvl-curriculum[s3]'") from None
    config = Config(retries={"max_attempts": 3, "mode": "standard"})
    if anonymous:
        from botocore import UNSIGNED

        config = config.merge(Config(signature_version=UNSIGNED))
    return boto3.client("s3", endpoint_url=endpoint, region_name=region, config=config)
