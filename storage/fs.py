"""Where input files live: a local path or an object-store URI (``s3://bucket/key``). The one seam.

Every reader of raw inputs (source listing, fingerprints, the JSON/JSONL/Parquet/
WebDataset readers, image references) goes through these few functions. A local
path takes exactly the code path it always took (``open``, ``os.stat``,
``pathlib``); a URI is served by pyarrow's built-in ``S3FileSystem`` (no extra
package: it ships in the pyarrow wheel).

Where the S3 endpoint, region and credentials come from, first match wins:

* endpoint: the recipe's ``storage.s3.endpoint_url``, else ``$AWS_ENDPOINT_URL_S3``,
  else ``$AWS_ENDPOINT_URL``, else AWS;
* region: ``storage.s3.region``, else ``$AWS_REGION`` / ``$AWS_DEFAULT_REGION``, else
  what the AWS SDK resolves;
* credentials: never in the recipe; the AWS SDK's default chain
  (``$AWS_ACCESS_KEY_ID`` / ``$AWS_SECRET_ACCESS_KEY`` / ``$AWS_SESSION_TOKEN``,
  ``~/.aws``, instance or pod roles), or none with ``storage.s3.anonymous: true``.
"""

from __future__ import annotations

import io
import os
import posixpath
import re
from fnmatch import fnmatchcase
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO

from pydantic import BaseModel, ConfigDict, Field

SCHEMES = ("s3",)
_URI_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_GLOB_CHARS = "*?["

PathLike = str | Path


class ObjectStoreOptions(BaseModel):
    """How to reach the object store (``storage.s3`` in the recipe). Credentials come from the environment."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    endpoint_url: str | None = Field(
        default=None,
        description="S3-compatible endpoint, e.g. http://minio:9000 (default: $AWS_ENDPOINT_URL_S3, "
        "$AWS_ENDPOINT_URL, else AWS).",
    )
    region: str | None = Field(default=None, description="Bucket region (default: $AWS_REGION / the AWS SDK's).")
    anonymous: bool = Field(default=False, description="Unsigned requests (public buckets); no credentials read.")


def scheme(path: PathLike) -> str | None:
    """The URI scheme of ``path`` (``s3``), or None for a local path."""
    m = _URI_RE.match(str(path))
    return m.group(1).lower() if m else None


def is_uri(path: PathLike | None) -> bool:
    """True for an object-store URI this module serves (``s3://...``)."""
    return path is not None and scheme(path) in SCHEMES


def check_uri(uri: str, what: str = "path") -> str:
    """``uri`` if it names a supported scheme and a bucket; else ValueError naming ``what``."""
    s = scheme(uri)
    if s not in SCHEMES:
        raise ValueError(f"{what} {uri!r}: unsupported scheme {s!r} (supported: {', '.join(SCHEMES)})")
    if not uri[len(s) + 3 :].split("/", 1)[0]:
        raise ValueError(f"{what} {uri!r} names no bucket (expected s3://bucket/prefix)")
    return uri


def _key(uri: str) -> str:
    """``s3://bucket/a/b`` → ``bucket/a/b`` (the path pyarrow's S3 filesystem takes)."""
    return uri.split("://", 1)[1].strip("/")


def _uri(key: str) -> str:
    return f"s3://{key}"


@lru_cache(maxsize=8)
def _s3(endpoint: str | None, region: str | None, anonymous: bool):
    from pyarrow.fs import S3FileSystem

    args: dict = {"anonymous": anonymous}
    if endpoint:
        http = endpoint.startswith("http://")
        args["endpoint_override"] = endpoint.split("://", 1)[-1]
        args["scheme"] = "http" if http else "https"
    if region:
        args["region"] = region
    return S3FileSystem(**args)


def filesystem(store: ObjectStoreOptions | None = None):
    """The pyarrow S3 filesystem for ``store`` (recipe settings, then the environment; cached per process)."""
    store = store or ObjectStoreOptions()
    env = os.environ
    endpoint = store.endpoint_url or env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    region = store.region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    return _s3(endpoint, region, store.anonymous)


# -- what is there ---------------------------------------------------------------------------------
def stat(path: PathLike, store: ObjectStoreOptions | None = None) -> tuple[int, int, str]:
    """(size, mtime in ns, ETag or '') of a file; OSError (FileNotFoundError) if there is none."""
    if not is_uri(path):
        st = os.stat(path)
        return st.st_size, st.st_mtime_ns, ""
    from pyarrow.fs import FileType

    fs, key = filesystem(store), _key(str(path))
    info = fs.get_file_info(key)
    if info.type != FileType.File:
        raise FileNotFoundError(f"no object at {path}")
    with fs.open_input_file(key) as f:  # one HEAD request: the ETag pyarrow's FileInfo does not carry
        etag = (f.metadata() or {}).get("ETag", b"").decode("ascii", "replace").strip('"')
    return info.size, info.mtime_ns or 0, etag


def size(path: PathLike, store: ObjectStoreOptions | None = None) -> int:
    """Size of a file in bytes."""
    if not is_uri(path):
        return os.stat(path).st_size
    return _file_info(str(path), store).size


def _file_info(uri: str, store: ObjectStoreOptions | None):
    from pyarrow.fs import FileType

    info = filesystem(store).get_file_info(_key(uri))
    if info.type != FileType.File:
        raise FileNotFoundError(f"no object at {uri}")
    return info


def is_file(path: PathLike, store: ObjectStoreOptions | None = None) -> bool:
    if not is_uri(path):
        return os.path.isfile(path)
    from pyarrow.fs import FileType

    return filesystem(store).get_file_info(_key(str(path))).type == FileType.File


def list_files(uri: str, store: ObjectStoreOptions | None = None) -> list[str]:
    """Every object under the prefix ``uri`` (as a folder: ``uri/``), sorted URIs. No objects: []."""
    from pyarrow.fs import FileSelector, FileType

    sel = FileSelector(_key(uri), recursive=True, allow_not_found=True)
    return sorted(_uri(i.path) for i in filesystem(store).get_file_info(sel) if i.type == FileType.File)


def expand(pattern: str, suffix: str, store: ObjectStoreOptions | None = None) -> list[str]:
    """A URI source spec → sorted object URIs: a glob (``*``, ``?``, ``[``; ``**`` crosses folders,
    matched on the whole key), a prefix holding ``*<suffix>`` objects, or one object."""
    check_uri(pattern, "dataset path")
    if any(c in pattern for c in _GLOB_CHARS):
        key = _key(pattern)
        i = min(key.index(c) for c in _GLOB_CHARS if c in key)
        if "/" not in key[:i]:
            raise ValueError(f"dataset path {pattern!r}: a glob cannot match bucket names")
        anchor = key[:i].rsplit("/", 1)[0]
        return [u for u in list_files(_uri(anchor), store) if _glob_match(_key(u), key)]
    if is_file(pattern, store):
        return [pattern.rstrip("/")]
    return [u for u in list_files(pattern, store) if u.endswith(suffix)]


def _glob_match(key: str, pattern: str) -> bool:
    """``fnmatch`` where ``*`` stays within one folder and ``**`` crosses them (as ``Path.glob``)."""
    if "**" in pattern:
        return fnmatchcase(key, pattern.replace("**/", "*").replace("**", "*"))
    k, p = key.split("/"), pattern.split("/")
    return len(k) == len(p) and all(fnmatchcase(a, b) for a, b in zip(k, p))


# -- reading ------------------------------------------------------------------------------------------
def open_binary(path: PathLike, store: ObjectStoreOptions | None = None) -> BinaryIO:
    """A seekable, buffered binary reader (``open(path, "rb")`` for a local path)."""
    if not is_uri(path):
        return open(path, "rb")
    return io.BufferedReader(filesystem(store).open_input_file(_key(str(path))), buffer_size=1 << 20)


def read_bytes(path: PathLike, store: ObjectStoreOptions | None = None) -> bytes:
    if not is_uri(path):
        return Path(path).read_bytes()
    with filesystem(store).open_input_file(_key(str(path))) as f:
        return f.readall()


def parquet_source(path: PathLike, store: ObjectStoreOptions | None = None):
    """What ``pyarrow.parquet.ParquetFile`` opens: the path itself, or a random-access S3 file."""
    if not is_uri(path):
        return path
    return filesystem(store).open_input_file(_key(str(path)))


# -- names -------------------------------------------------------------------------------------------
def name(path: PathLike) -> str:
    """The last component (``s3://b/x/y.jsonl`` → ``y.jsonl``)."""
    return posixpath.basename(str(path).rstrip("/")) if is_uri(path) else Path(path).name


def resolve_under(ref: str, root: str) -> tuple[str | None, str]:
    """The object URI ``ref`` names under the URI prefix ``root``, or (None, why it is outside).

    The reference is joined to the root's key and normalised (``.``, ``..``, repeated
    ``/``); the result must lie under ``root/``, compared as key text. S3 has no
    symlinks or hard links, so the normalised key is the object that would be read:
    what the text check sees is the whole story for names. It cannot see (and does
    not need to) who may read what: the credentials decide that, not the check.
    A key that literally contains ``..`` or ``//`` is unreachable by reference
    (normalisation turns it into another key). Absolute references (``/x``) are
    local-path syntax and are refused on an object-store root.
    """
    base = _key(root)
    if ref.startswith("/"):
        return None, "is an absolute path; references under an object-store image root must be relative"
    target = posixpath.normpath(posixpath.join(base, ref))
    if not target.startswith(base + "/"):
        return None, "escapes"
    return _uri(target), ""
