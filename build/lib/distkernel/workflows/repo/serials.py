"""Replay protection: the newest index serial seen from each binhost, keyed by the
binhost's identity (the fingerprint of the key that signs its index), never by the URL
it was reached at: `http://127.0.0.1:8080//` and `http://localhost:8080` are one binhost.
A damaged file fails closed: forgetting what was seen would let an old index back in."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distkernel.core import cache
from distkernel.core.errors import UserError

FORMAT = 2  # keyed by index key; format 1 (no "format" field) was keyed by URL
LOCK = "repo-serials"
HEX64_RE = re.compile(r"^[0-9a-f]{64}$")  # a key fingerprint, a sha256


@dataclass(frozen=True)
class Seen:
    serial: int
    sha256: str
    url: str  # where it was last fetched from (for messages only)


def _damaged(path: Path, why: str) -> UserError:
    return UserError(
        f"{path}: damaged ({why}); it holds the newest index serial seen per binhost key: restore it from a "
        "backup, or delete it to accept each binhost's current index as new"
    )


def read_seen(path: Path) -> dict[str, Seen]:
    """fingerprint -> what was seen; {} when the file does not exist."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as e:
        raise _damaged(path, getattr(e, "strerror", None) or "not text") from None
    try:
        doc: Any = json.loads(text)
    except ValueError:
        raise _damaged(path, "not JSON") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("repos"), dict):
        raise _damaged(path, f"not a format-{FORMAT} serials file")
    out = {}
    for fingerprint, raw in doc["repos"].items():
        ok = (
            HEX64_RE.match(fingerprint)
            and isinstance(raw, dict)
            and type(raw.get("serial")) is int
            and isinstance(raw.get("sha256"), str)
            and HEX64_RE.match(raw["sha256"])
            and isinstance(raw.get("url", ""), str)
        )
        if not ok:
            raise _damaged(path, f"entry {fingerprint[:16]!r} is malformed")
        out[fingerprint] = Seen(raw["serial"], raw["sha256"], raw.get("url", ""))
    return out


def check(seen: dict[str, Seen], signer: str, serial: int, digest: str, where: str) -> None:
    """Refuse an index older than one seen from the same binhost (a replay), or a
    different index with a serial seen before."""
    last = seen.get(signer)
    if last is None:
        return
    if serial < last.serial:
        raise UserError(
            f"{where}: serial {serial} is older than serial {last.serial} seen before from the binhost signed by "
            f"key {signer[:16]}: an old index is being replayed; refusing it"
        )
    if serial == last.serial and digest != last.sha256:
        raise UserError(
            f"{where}: serial {serial} was seen before with other content from the binhost signed by key "
            f"{signer[:16]}; refusing it"
        )


def check_file(path: Path, signer: str, serial: int, digest: str, where: str) -> None:
    check(read_seen(path), signer, serial, digest, where)


def remember(path: Path, signer: str, serial: int, digest: str, where: str) -> None:
    """Check again under the lock (another fetch may have seen a newer index since),
    then record this one."""
    with cache.locked(LOCK):
        seen = read_seen(path)
        check(seen, signer, serial, digest, where)
        seen[signer] = Seen(serial, digest, where)
        doc = {
            "format": FORMAT,
            "repos": {k: {"serial": v.serial, "sha256": v.sha256, "url": v.url} for k, v in sorted(seen.items())},
        }
        cache.atomic_write_text(path, json.dumps(doc, indent=1, sort_keys=True) + "\n")
