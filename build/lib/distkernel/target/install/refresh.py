"""What external modules change in an installed kernel, each in its own transaction under
the root's lock: its initramfs made again (for the uki layout a new UKI, signed again),
and its record of external module outcomes (what `list` shows).

`hold(root)` takes the lock once for a whole `modules add/rebuild/remove`, so that an
install or a prune cannot change a kernel's modules dir in between; the lock is not
re-entrant, so under `hold` call the Held methods, never the module-level functions."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from distkernel.core.errors import UserError
from distkernel.core.paths import STATE_DIR
from distkernel.target.install.api import Installation, make_initrd
from distkernel.target.install.changes import stage_shared
from distkernel.target.install.layouts.base import KernelFiles, Placement, stage_file
from distkernel.target.install.layouts.uki import signed_uki
from distkernel.target.install.manage import run_after_commit
from distkernel.target.install.state import KernelRecord, ModuleRecord, State, read_state
from distkernel.target.install.target import Target
from distkernel.target.install.transaction import checkpoint, recover_journal, root_lock, transaction


@dataclass(frozen=True)
class Held:
    """The root's lock, held (made by `hold`)."""

    target: Target

    @property
    def root(self) -> Path:
        return self.target.root

    def state(self) -> State:
        return read_state(self.root)

    def _kernel(self, state: State, release: str) -> KernelRecord:
        k = state.kernels.get(release)
        if k is None:
            raise UserError(f"{self.root}: kernel {release} was not installed by distkernel; see `distkernel list`")
        return k

    def refresh_initramfs(self, release: str, extra_modules: Sequence[str] | None = None) -> Installation:
        """Rebuild RELEASE's initramfs from its installed modules dir. EXTRA_MODULES is the
        whole set of external modules it carries (None: the set it carried before), so a
        module taken out of the registry leaves the image too."""
        root, old = self.root, self.state()
        k = self._kernel(old, release)
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
                built, p.uki_signer = signed_uki(self.target, files, work)
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

    def update_modules(
        self, release: str, changed: Sequence[ModuleRecord] = (), removed: Sequence[str] = ()
    ) -> KernelRecord:
        """Record CHANGED outcomes for RELEASE and forget the modules named in REMOVED.
        A kernel a --required module now fails for is no longer bootable (rollback skips
        it), except the default one: it has been booting without that module. One whose
        required modules all build again is bootable again (the default when there is none)."""
        old = self.state()
        k = self._kernel(old, release)
        drop = {m.name for m in changed} | set(removed)
        kept = [m for m in k.external_modules if m.name not in drop]
        records = tuple(sorted([*kept, *changed], key=lambda m: m.name))
        blocked = any(m.required and not m.ok for m in records)
        record = dataclasses.replace(k, external_modules=records, bootable=release == old.default or not blocked)
        if record == k:
            return k
        default = old.default if old.default is not None or not record.bootable else release
        new = dataclasses.replace(old, kernels={**old.kernels, release: record}, default=default)
        with transaction(self.root, f"modules {release}") as tx:
            new = stage_shared(tx, self.target, old, new)  # bootable kernels are the ones boot menus name
            tx.commit(new)
        if record.bootable != k.bootable:
            run_after_commit(self.target, new, added=[], removed=[])
        return record


@contextlib.contextmanager
def hold(root: Path) -> Iterator[Held]:
    """Take ROOT's install lock (an interrupted transaction is settled first)."""
    target = Target.probe(Path(root).resolve())
    with root_lock(target.root):
        recover_journal(target.root)
        yield Held(target)


def refresh_initramfs(root: Path, release: str, extra_modules: Sequence[str] | None = None) -> Installation:
    with hold(root) as held:
        return held.refresh_initramfs(release, extra_modules)


def update_module_records(
    root: Path, release: str, changed: Sequence[ModuleRecord] = (), removed: Sequence[str] = ()
) -> KernelRecord:
    with hold(root) as held:
        return held.update_modules(release, changed, removed)
