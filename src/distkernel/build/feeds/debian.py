"""Debian's linux-source-X.Y packages as a version feed. apt knows every version the
archive keeps (several of one series); a pinned one is fetched with `apt-get download
NAME=VERSION` (apt checks it against the archive's signed Release and Packages files)
into the cache and unpacked there: nothing is installed on this system."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

from distkernel.core import cache
from distkernel.core.errors import UserError
from distkernel.core.tools import call, run

VERSION_RE = re.compile(r"^[0-9][A-Za-z0-9.+~:-]{0,99}$")  # a Debian version


APT_LISTS = Path("/var/lib/apt/lists")
MEMO = "apt-versions.json"


def _lists_key() -> str:
    """What apt's answer depends on: its package lists as `apt-get update` left them."""
    entries = []
    for p in sorted(APT_LISTS.glob("*")) if APT_LISTS.is_dir() else ():
        if p.is_file() and p.name != "lock":
            st = p.stat()
            entries.append(f"{p.name}\0{st.st_size}\0{st.st_mtime_ns}")
    return cache.sha256_bytes("\n".join(entries).encode())


def versions_of(names: list[str]) -> dict[str, list[str]]:
    """Every version of each package apt can fetch, newest first (`apt-cache madison`
    lists them by version, highest first). apt's own binary cache is often switched off
    (container images), which makes every apt-cache call parse all the lists for
    seconds: the answer is kept until the lists change."""
    memo_path = cache.cache_dir("feeds") / MEMO
    key = _lists_key()
    try:
        memo = json.loads(memo_path.read_text())
        known = memo["versions"] if memo.get("lists") == key else {}
    except (OSError, ValueError, KeyError, TypeError):
        known = {}
    missing = sorted({n for n in names if not isinstance(known.get(n), list)})
    if missing:
        done = call(["apt-cache", "madison", *missing], ok=None)
        found: dict[str, list[str]] = {n: [] for n in missing}
        for line in done.output.splitlines():
            parts = [p.strip() for p in line.split("|")]
            if len(parts) >= 3 and parts[0] in found and VERSION_RE.match(parts[1]) and parts[1] not in found[parts[0]]:
                found[parts[0]].append(parts[1])
        known = {**known, **found}
        cache.atomic_write_text(memo_path, json.dumps({"lists": key, "versions": known}))
    return {n: list(known[n]) for n in names}


def versions(name: str) -> list[str]:
    return versions_of([name])[name]


def series_of(name: str) -> str:
    """linux-source-6.12 -> 6.12"""
    return name.removeprefix("linux-source-")


def upstream(version: str) -> str:
    """6.12.117-1~deb12u1 -> 6.12.117 (the kernel version of a Debian version)."""
    return version.split(":", 1)[-1].split("-", 1)[0]


def deb_sha256(name: str, version: str, where: str) -> str:
    """The .deb's sha256 as the archive's signed Packages file gives it."""
    done = call(["apt-cache", "show", f"{name}={version}"], ok=None)
    m = re.search(r"^SHA256: ([0-9a-f]{64})$", done.output, re.M)
    if done.code != 0 or not m:
        raise UserError(f"{where}{name}={version}: apt knows no such version; pick one of `apt-cache madison {name}`")
    return m.group(1)


def _entry_name(name: str, version: str) -> str:
    return f"{name}_{version.replace(':', '%3a')}"


def fetch(name: str, version: str, sha256: str, where: str) -> Path:
    """The source tarball of NAME=VERSION, from the cache or fetched into it."""
    if not VERSION_RE.match(version):
        raise UserError(f"{where}kernel.version: `{version}` is not a Debian version (like 6.12.117-1~deb12u1)")
    entry = cache.cache_dir("debian") / _entry_name(name, version)
    found = _tarball_in(entry, name)
    if found is not None:
        return found
    with cache.locked(f"debian-{entry.name}"):
        if (found := _tarball_in(entry, name)) is not None:
            return found
        known_versions = versions(name)
        if version not in known_versions:
            known = ", ".join(known_versions[:6]) or "none; run apt-get update"
            raise UserError(f"{where}kernel.version: {name}={version} is not in the archive (known: {known})")
        with cache.staged_dir(entry) as stage:
            dl = stage / "deb"
            dl.mkdir()
            os.chmod(stage, 0o755)
            os.chmod(dl, 0o777)  # apt downloads as its own _apt user when it can
            log = stage / "fetch.log"
            run(["apt-get", "download", "-q", f"{name}={version}"], cwd=dl, log=log, what=f"apt-get download {name}")
            debs = list(dl.glob("*.deb"))
            if len(debs) != 1:
                raise UserError(f"{where}apt-get download {name}={version} gave {len(debs)} .deb files; expected one")
            got = cache.sha256_file(debs[0])
            if sha256 and got != sha256:
                raise UserError(
                    f"{where}kernel.sha256: {debs[0].name} has sha256 {got}, the recipe expects {sha256}; fix the hash"
                )
            run(["dpkg-deb", "-x", debs[0], stage / "root"], log=log, what=f"unpacking {debs[0].name}")
            src = _tarball_in(stage / "root" / "usr" / "src", name)
            if src is None:
                raise UserError(
                    f"{where}{debs[0].name} holds no /usr/src/{name}.tar.*; it is not a linux-source package"
                )
            os.replace(src, stage / src.name)
            (stage / "deb.sha256").write_text(got + "\n")
            shutil.rmtree(stage / "root")
            shutil.rmtree(dl)
    found = _tarball_in(entry, name)
    assert found is not None
    return found


def _tarball_in(folder: Path, name: str) -> Path | None:
    for ext in ("tar.xz", "tar.zst", "tar.bz2", "tar.gz"):
        if (folder / f"{name}.{ext}").is_file():
            return folder / f"{name}.{ext}"
    return None
