"""Re-make one installed kernel's initramfs (external modules need it after they were
rebuilt), in a transaction: the new initramfs, or for the uki layout a new UKI,
replaces the old one by rename."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from distkernel.errors import UserError
from distkernel.install.api import Installation, make_initrd
from distkernel.install.layouts import KernelFiles, Placement, stage_file
from distkernel.install.layouts.uki import signed_uki
from distkernel.install.manage import finish_interrupted
from distkernel.install.state import STATE_DIR, read_state
from distkernel.install.target import Target
from distkernel.install.transaction import checkpoint, root_lock, transaction


def refresh_initramfs(root: Path, release: str, extra_modules: Sequence[str] | None = None) -> Installation:
    """Rebuild RELEASE's initramfs from its installed modules dir. EXTRA_MODULES is the
    whole set of external modules it carries (None: the set it carried before), so a
    module taken out of the registry leaves the image too."""
    root = Path(root).resolve()
    target = Target.probe(root)
    with root_lock(root):
        finish_interrupted(root)
        old = read_state(root)
        k = old.kernels.get(release)
        if k is None:
            raise UserError(f"{root}: kernel {release} was not installed by distkernel; see `distkernel list`")
        if k.initramfs == "none":
            raise UserError(f"kernel {release} was installed with --initramfs none; reinstall it with an initramfs")
        extra = tuple(sorted(k.initramfs_modules if extra_modules is None else extra_modules))
        with transaction(root, f"refresh-initramfs {release}") as tx:
            work = tx.stage(f"{STATE_DIR}/work")
            work.mkdir()
            moddir = root / k.modules_dir
            initrd = make_initrd(
                k.initramfs, release, moddir, root / k.headers_dir / ".config", work / "initrd.img", extra, root
            )
            checkpoint("initramfs")
            p = Placement()
            if k.layout == "uki":
                files = KernelFiles(release, moddir / "vmlinuz", initrd, Path(), Path(), k.cmdline, k.arch)
                built, p.uki_signer = signed_uki(target, files, work)
                stage_file(tx, built, k.uki, p)
            else:
                assert initrd is not None
                stage_file(tx, initrd, k.initrd, p)
            replaced = {f.path: f for f in p.files}
            record = dataclasses.replace(
                k,
                files=tuple(replaced.get(f.path, f) for f in k.files),
                initramfs_modules=extra,
                uki_signer=p.uki_signer,
            )
            tx.delete(str(work.relative_to(root)))
            new = dataclasses.replace(old, kernels={**old.kernels, release: record})
            tx.commit(new)
    return Installation.of(root, record, new)
