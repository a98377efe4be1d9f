"""The last index fetched from each mirror URL, with the validators its server sent
(ETag, Last-Modified), so that the next fetch of that index is a conditional request:
an unchanged index costs a 304 and no body. Kept per root (or in the user's cache
when there is none), keyed by the URL, written only after a fetch succeeded. What it
holds is checked again like any index (signature, serial): a damaged or planted entry
costs at most a full download, never trust."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from distkernel.core import cache

# A validator goes back to the server as a header value: printable ASCII, bounded.
VALUE_RE = re.compile(r"^[\x20-\x7e]{1,512}$")


@dataclass(frozen=True)
class Cached:
    data: bytes
    etag: str
    last_modified: str

    def headers(self) -> dict[str, str]:
        out = {}
        if self.etag:
            out["If-None-Match"] = self.etag
        if self.last_modified:
            out["If-Modified-Since"] = self.last_modified
        return out


def _paths(folder: Path, url: str) -> tuple[Path, Path]:
    key = cache.sha256_bytes(url.encode())[:32]
    return folder / f"{key}.json", folder / f"{key}.index"


def _ok(value: object) -> bool:
    return isinstance(value, str) and (value == "" or VALUE_RE.match(value) is not None)


def load(folder: Path | None, url: str) -> Cached | None:
    """What was remembered for URL, or None (nothing, or not usable: fetch it whole)."""
    if folder is None:
        return None
    meta_path, data_path = _paths(folder, url)
    try:
        meta = json.loads(meta_path.read_text())
        data = data_path.read_bytes()
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get("url") != url or meta.get("sha256") != cache.sha256_bytes(data):
        return None
    etag, modified = meta.get("etag", ""), meta.get("last_modified", "")
    if not (_ok(etag) and _ok(modified)) or not (etag or modified):
        return None
    return Cached(data, str(etag), str(modified))


def save(folder: Path | None, url: str, data: bytes, etag: str, modified: str) -> None:
    """Remember the index fetched from URL with its validators (when the server sent any)."""
    etag, modified = (v if _ok(v) else "" for v in (etag, modified))
    if folder is None or not (etag or modified):
        return
    meta_path, data_path = _paths(folder, url)
    folder.mkdir(parents=True, exist_ok=True)
    cache.atomic_write_bytes(data_path, data)
    meta = {"url": url, "sha256": cache.sha256_bytes(data), "etag": etag, "last_modified": modified}
    cache.atomic_write_text(meta_path, json.dumps(meta, indent=1, sort_keys=True) + "\n")
