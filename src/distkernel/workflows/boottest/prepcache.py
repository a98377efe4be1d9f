"""A boot test's preparation kept by content. The key is the package's sha256, the
options that shape what boots (firmware, layout, command line, modules, a custom init),
distkernel's own code and the host's installed packages (the busybox, boot loaders and
firmware the preparation takes from the host). A second test of the same package skips
the reader's pass, the install, the test initramfs and the disk image, and starts qemu.

The marker's token is made with the entry and lives only inside its initramfs, as it
does for a fresh preparation: nothing on the console but the test init can print it.
The few newest entries are kept; a hit copies the files into the run's own folder, so
an entry removed by another test meanwhile is only a miss."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from distkernel.build.package.format import Metadata, canonical_json
from distkernel.build.package.schema import SchemaError, parse_metadata
from distkernel.core import cache
from distkernel.workflows.boottest.preflight import judge_package
from distkernel.workflows.boottest.prepare import Prepared

KEEP = 8  # prepared entries: a disk image is a few tens of MB
# What the preparation runs is all of distkernel but the CLI.
CODE = ("core", "build", "target", "workflows")
# Rewritten by every install or upgrade of a host package: busybox-static, OVMF,
# systemd-boot, GRUB, mtools ... a new version of any is a new preparation.
HOST_PACKAGES = Path("/var/lib/dpkg/status")
FILES = ("kernel", "initrd", "disk")


@functools.cache
def code_fingerprint() -> str:
    return cache.tree_sha256(Path(__file__).parents[2], CODE)


def _host_stamp() -> str:
    try:
        st = HOST_PACKAGES.stat()
    except OSError:
        return ""
    return f"{st.st_size}:{st.st_mtime_ns}"


def _key(doc: dict[str, Any]) -> str:
    return cache.sha256_bytes(json.dumps(doc, sort_keys=True).encode())


def judged(package: Path) -> tuple[Metadata, dict[str, str]]:
    """judge_package's verdict on these bytes, remembered: the reader's whole pass
    runs once per package content and code."""
    entry = cache.cache_dir("boottest", "judged") / _key(
        {"package": cache.sha256_file_memo(package), "code": code_fingerprint()}
    )
    with contextlib.suppress(OSError, ValueError, KeyError, SchemaError):
        saved = json.loads(entry.read_text())
        return parse_metadata(canonical_json(saved["metadata"])), dict(saved["config"])
    meta, config = judge_package(package)
    cache.atomic_write_text(entry, json.dumps({"metadata": meta.to_json(), "config": config}))
    return meta, config


def prepared_key(package: Path, **shape: Any) -> str:
    return _key(
        {
            "package": cache.sha256_file_memo(package),
            "code": code_fingerprint(),
            "host": _host_stamp(),
            **shape,
        }
    )


def _restore(entry: Path, work: Path, start: float) -> tuple[Prepared, str] | None:
    try:
        saved = json.loads((entry / "prepared.json").read_text())
        files = {name: work / name for name in FILES if saved[name]}
        for name, dest in files.items():
            shutil.copyfile(entry / name, dest)
        os.utime(entry)  # recently used: kept longest
    except (OSError, ValueError, KeyError):
        return None
    ready = Prepared(
        saved["boot"],
        files.get("kernel"),
        files.get("initrd"),
        saved["cmdline"],
        files.get("disk"),
        time.monotonic() - start,
        cached=True,
    )
    return ready, str(saved["token"])


def _store(entry: Path, ready: Prepared, token: str) -> None:
    stage = entry.with_name(f".{entry.name}.stage-{os.getpid()}")
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    try:
        paths = {"kernel": ready.kernel, "initrd": ready.initrd, "disk": ready.disk}
        for name, path in paths.items():
            if path is not None:
                shutil.copyfile(path, stage / name)
        present = {name: path is not None for name, path in paths.items()}
        doc = {"boot": ready.boot, "cmdline": ready.cmdline, "token": token, **present}
        (stage / "prepared.json").write_text(json.dumps(doc))
        os.rename(stage, entry)
    except OSError:
        pass  # another test stored it first, or no room: the next test prepares again
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    prune(entry.parent)


def prune(folder: Path) -> None:
    entries = sorted((p for p in folder.iterdir() if not p.name.startswith(".")), key=_mtime, reverse=True)
    for old in entries[KEEP:]:
        shutil.rmtree(old, ignore_errors=True)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def cached_prepare(key: str, work: Path, token: str, prepare: Callable[[str], Prepared]) -> tuple[Prepared, str]:
    """The entry for KEY copied into WORK, or PREPARE(token) run and kept; the
    Prepared and the token its initramfs holds."""
    start = time.monotonic()
    entry = cache.cache_dir("boottest", "prepared") / key
    if entry.is_dir() and (found := _restore(entry, work, start)) is not None:
        return found
    ready = prepare(token)
    _store(entry, ready, token)
    return dataclasses.replace(ready, seconds=time.monotonic() - start), token
