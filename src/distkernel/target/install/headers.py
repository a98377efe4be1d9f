"""The headers of a kernel installed without them (a binhost's kernel part, or a package
file into a root that built no external modules then), placed later (when `modules
add` needs the headers to build against): the headers part, or the headers of the
whole package file, checked by the one reader against
the manifest the installed kernel came with and the root's trusted keys, then put in
place of the headers folder that held only .config, with the modules dir's `build`
link, in one transaction under the root's lock."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from distkernel.build.package.format import HEADERS_PART, WHOLE
from distkernel.build.package.reader import check_package
from distkernel.build.trust.gate import require_trusted
from distkernel.core.errors import UserError
from distkernel.target.install.refresh import hold
from distkernel.target.install.state import KernelRecord
from distkernel.target.install.transaction import transaction
from distkernel.target.install.unpack import Destinations, write_payload


def add_headers(root: Path, release: str, headers_part: Path, *, whole: bool = False) -> KernelRecord:
    """Place HEADERS_PART for RELEASE (nothing to do when it has its headers already);
    WHOLE: it is the whole package file, whose headers are taken."""
    part = WHOLE if whole else HEADERS_PART
    verified = check_package(headers_part, part=part, take=HEADERS_PART)  # all, before the lock and any write
    require_trusted(root, verified)
    with hold(root) as held:
        old = held.state()
        k = old.kernels.get(release)
        if k is None:
            raise UserError(f"{root}: kernel {release} is no longer installed; no headers to add")
        if k.headers:
            return k
        if k.origin is None or verified.manifest_sha256 != k.origin.manifest_sha256:
            raise UserError(f"{headers_part}: not the headers of the installed kernel {release}; not placing it")
        with transaction(held.root, f"headers {release}") as tx:
            staged = tx.stage(k.headers_dir)
            write_payload(verified, Destinations(staged, staged, staged))  # headers/ only is taken
            link = tx.stage(f"{k.modules_dir}/build")
            link.symlink_to(os.path.relpath(held.root / k.headers_dir, held.root / k.modules_dir))
            tx.put(staged, k.headers_dir)  # over the folder that held only .config (ours)
            tx.put(link, f"{k.modules_dir}/build")
            record = dataclasses.replace(k, headers=True)
            tx.commit(dataclasses.replace(old, kernels={**old.kernels, release: record}))
    return record
