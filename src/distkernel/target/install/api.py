"""The install stage's entry points: install a package, re-make one kernel's initramfs.
Each runs under the root's lock, first finishing or undoing an interrupted transaction,
and changes the root through one Transaction (see transaction.py)."""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from distkernel.build.package.format import HEADERS_PART, KERNEL_PART, WHOLE
from distkernel.build.package.reader import VerifiedPackage, read_head
from distkernel.build.trust.gate import require_trusted
from distkernel.core.errors import UserError
from distkernel.core.paths import INSTALL_LOG, STATE_DIR, one_line, plain_name, under_root
from distkernel.target.extmod.for_kernel import blocks_default, build_for_kernel
from distkernel.target.extmod.placement import depmod
from distkernel.target.extmod.registry import needs_headers
from distkernel.target.initramfs import InitramfsSpec, default_backend, make_initramfs
from distkernel.target.install.changes import stage_removal, stage_shared
from distkernel.target.install.layouts import KernelFiles, Placement, choose, place, refuse_foreign_files
from distkernel.target.install.manage import run_after_commit
from distkernel.target.install.markgood import refuse_unmarkable
from distkernel.target.install.plugins import run_hooks_before
from distkernel.target.install.retention import to_prune
from distkernel.target.install.state import KernelRecord, ModuleRecord, Origin, State, module_record, read_state
from distkernel.target.install.target import Target
from distkernel.target.install.transaction import (
    Transaction,
    checkpoint,
    folders_a_lock_makes,
    forget_first_lock,
    recover_journal,
    root_lock,
    transaction,
)
from distkernel.target.install.unpack import Destinations, write_payload

if TYPE_CHECKING:
    from distkernel.target.extmod.builder import ModuleOutcome

LOG = INSTALL_LOG


@dataclass(frozen=True)
class Installation:
    """One kernel as installed in a root; paths are absolute (under the root)."""

    root: Path
    release: str
    layout: str
    initramfs_backend: str
    image: Path  # what the boot loader starts (the UKI for the uki layout)
    initrd: Path | None
    entries: tuple[Path, ...]  # the BLS entry or grub.cfg naming it
    uki: Path | None
    uki_signer: str  # subject of the db certificate that signed the UKI; "" when unsigned or no UKI
    modules_dir: Path
    headers_dir: Path
    default: bool
    cmdline: str
    external_modules: tuple[ModuleRecord, ...] = ()
    pruned: tuple[str, ...] = ()  # releases retention removed
    hooks: tuple[str, ...] = ()  # the root's plugins that ran
    headers: bool = True  # False: the headers part was not fetched (headers_dir holds only .config)

    @classmethod
    def of(cls, root: Path, k: KernelRecord, state: State, **extra: tuple[str, ...]) -> Installation:
        return cls(
            root=root,
            release=k.release,
            layout=k.layout,
            initramfs_backend=k.initramfs,
            image=root / k.image,
            initrd=root / k.initrd if k.initrd else None,
            entries=tuple(root / e for e in (k.entry,) if e),
            uki=root / k.uki if k.uki else None,
            uki_signer=k.uki_signer,
            modules_dir=root / k.modules_dir,
            headers_dir=root / k.headers_dir,
            default=state.default == k.release,
            cmdline=k.cmdline,
            external_modules=k.external_modules,
            headers=k.headers,
            **extra,
        )


@dataclass(frozen=True)
class FromBinhost:
    """A package as a binhost client fetched it: the package file given to install is
    its kernel part (the whole package for an old-style index entry, `part`), and
    `headers` its headers part when the root builds external modules."""

    part: str
    headers: Path | None
    origin: Origin
    judged: VerifiedPackage  # the fetch's judgement of the package file


def _verified(
    package: Path,
    root: Path,
    part: str = WHOLE,
    same_as: VerifiedPackage | None = None,
    judged: VerifiedPackage | None = None,
) -> VerifiedPackage:
    """The package (or one PART of it): its control members judged by the one reader,
    then the root's trust policy; nothing is written before both pass. The payload is
    judged as it is staged (one pass): a refusal there throws the staging away, and in
    a root distkernel never used, the lock file made for it too.
    SAME_AS: another part of the package, whose manifest and signature this one must
    carry. JUDGED: this file as the fetch judged it, which it must still be. Either's
    parsed manifest is taken when the bytes are the same."""
    verified = read_head(package, part, expect=same_as or judged)
    sealed = (verified.manifest_sha256, verified.signature)
    if same_as is not None and sealed != (same_as.manifest_sha256, same_as.signature):
        raise UserError(f"{package}: not the headers part of {same_as.path} (another manifest); not installing it")
    if judged is not None and sealed != (judged.manifest_sha256, judged.signature):
        raise UserError(f"{package}: changed since it was fetched; run the command again")
    require_trusted(root, verified)
    return verified


def places_headers(root: Path, fetched: FromBinhost | None, with_headers: bool) -> bool:
    """Whether an install places the kernel's headers tree: from a binhost, when the
    headers part was fetched; from a package file, WITH_HEADERS or when the root builds
    external modules (the rule a binhost client fetches by)."""
    if fetched is not None:
        return fetched.part == WHOLE or fetched.headers is not None
    return with_headers or needs_headers(root)


def install_package(
    package: Path,
    root: Path,
    *,
    layout: str | None = None,
    initramfs: str | None = None,
    cmdline: str | None = None,
    keep: int = 3,
    fetched: FromBinhost | None = None,
    with_headers: bool = False,
) -> Installation:
    """Verify PACKAGE, then install it into ROOT in one transaction; retention prunes
    beyond KEEP; the root's hooks run after the commit. FETCHED: PACKAGE came from a
    binhost as its parts (without the headers part, headers_dir gets only .config).
    A package file places its headers tree only WITH_HEADERS or when the root builds
    external modules (the rule a binhost client follows); otherwise the tree is not
    written, and `modules add` takes it from the same file later."""
    root = Path(root).resolve()
    target = Target.probe(root)
    part, judged = (fetched.part, fetched.judged) if fetched else (WHOLE, None)
    verified = _verified(Path(package), root, part, judged=judged)  # before anything is written
    if not places_headers(root, fetched, with_headers):
        verified = dataclasses.replace(verified, take=KERNEL_PART)
    headers = None
    if fetched is not None and fetched.headers is not None:
        headers = _verified(fetched.headers, root, HEADERS_PART, same_as=verified)
    release = plain_name(verified.metadata.kernel_release, f"{package}: metadata.json kernel_release")
    chosen = choose(target, layout)
    backend = initramfs or default_backend(root)
    if cmdline is not None:
        line = one_line(cmdline, "--cmdline")
    else:
        line = one_line(target.default_cmdline(), f"{root}/etc/kernel/cmdline")
    one_line(target.pretty_name(), f"{root}/etc/os-release PRETTY_NAME")
    one_line(target.machine_id, f"{root}/etc/machine-id")
    before = read_state(root)
    refuse_foreign_files(target, chosen, release, before)  # checked again under the lock
    refuse_unmarkable(target, chosen, release, before)
    made = folders_a_lock_makes(root)
    with root_lock(root):
        try:
            return _install_locked(target, (verified, headers), chosen, backend, line, keep, fetched)
        except BaseException:
            forget_first_lock(root, made)
            raise


def _install_locked(
    target: Target,
    parts: tuple[VerifiedPackage, VerifiedPackage | None],
    chosen: str,
    backend: str,
    line: str,
    keep: int,
    fetched: FromBinhost | None,
) -> Installation:
    root, release = target.root, parts[0].metadata.kernel_release
    checkpoint("locked")
    recover_journal(root)
    old = read_state(root)
    if release not in old.kernels and (target.path(target.modules_dir(release)).exists()):
        raise UserError(
            f"{root}: kernel {release} is already installed there, not by distkernel; "
            "remove it with the tool that installed it, or build with another localversion"
        )
    run_hooks_before(target, "add", release, chosen)
    with transaction(root, f"install {release}") as tx:
        record, new = _stage_install(tx, target, parts, chosen, backend, line, old, fetched)
        pruned = to_prune(new, keep, is_host=target.is_host)
        for gone in pruned:
            run_hooks_before(target, "remove", gone, new.kernels[gone].layout)
            stage_removal(tx, new.kernels[gone])
        new = dataclasses.replace(new, kernels={r: k for r, k in new.kernels.items() if r not in pruned})
        new = stage_shared(tx, target, old, new)
        checkpoint("layout")
        tx.commit(new)
    ran = run_after_commit(target, new, added=[record], removed=[old.kernels[r] for r in pruned])
    return Installation.of(root, record, new, pruned=tuple(pruned), hooks=tuple(ran))


def _stage_install(
    tx: Transaction,
    target: Target,
    parts: tuple[VerifiedPackage, VerifiedPackage | None],
    layout: str,
    backend: str,
    cmdline: str,
    old: State,
    fetched: FromBinhost | None,
) -> tuple[KernelRecord, State]:
    verified, headers_part = parts
    meta, root = verified.metadata, target.root
    release = meta.kernel_release
    moddir, headers = target.modules_dir(release), target.headers_dir(release)
    base = tx.stage(f"{target.modules_base}/depmod")  # depmod -b wants BASE/lib/modules/RELEASE
    staged_mods = base / "lib/modules" / release
    staged_headers = tx.stage(headers)
    work = tx.stage(f"{STATE_DIR}/work")
    write_payload(verified, Destinations(work, staged_mods, staged_headers))
    if headers_part is not None:
        write_payload(headers_part, Destinations(work, staged_mods, staged_headers))
    has_headers = verified.taken == WHOLE or headers_part is not None
    checkpoint("extracted")
    if has_headers:
        (staged_mods / "build").symlink_to(os.path.relpath(root / headers, root / moddir))
    else:  # what the initramfs and the boot test read from the headers; the rest comes with the headers part
        staged_headers.mkdir(parents=True)
        shutil.copyfile(work / "config", staged_headers / ".config")
    shutil.copyfile(work / "vmlinuz", staged_mods / "vmlinuz")  # kernel-install's place; refresh rebuilds UKIs from it
    log = under_root(root, LOG)
    log.parent.mkdir(parents=True, exist_ok=True)
    depmod(staged_mods, release, log)
    checkpoint("depmod")
    outcomes = build_for_kernel(root, release, staged_headers, staged_mods)
    if any(o.ok for o in outcomes):
        depmod(staged_mods, release, log)
    checkpoint("extmod")
    extra = tuple(sorted({m for o in outcomes if o.ok for m in o.in_initramfs}))
    initrd = make_initrd(backend, release, staged_mods, work / "config", work / "initrd.img", extra, root)
    checkpoint("initramfs")
    files = KernelFiles(release, work / "vmlinuz", initrd, work / "System.map", work / "config", cmdline, meta.arch)
    placement = place(layout, tx, target, files)
    previous = old.kernels.get(release)
    if previous is not None:  # a reinstall: drop what the new placement does not rewrite
        stage_removal(tx, previous, keep={f.path for f in placement.files} | {moddir, headers, *placement.dirs})
    tx.put(staged_mods, moddir)
    tx.put(staged_headers, headers)
    tx.delete(str(base.relative_to(root)))
    tx.delete(str(work.relative_to(root)))
    record = _record(
        target, meta.filename, meta.arch, release, layout, backend, cmdline, placement, outcomes, extra, old
    )
    origin = fetched.origin if fetched else None
    if fetched is None and not has_headers:
        origin = Origin.local(verified.path, verified.manifest_sha256)
    record = dataclasses.replace(record, headers=has_headers, origin=origin)
    bootable_default = record.release if record.bootable else old.default
    kernels = {**old.kernels, release: record}
    return record, State(kernels, bootable_default, old.shared, old.next_seq + 1)


def make_initrd(
    backend: str, release: str, moddir: Path, config: Path, out: Path, extra: tuple[str, ...], root: Path
) -> Path | None:
    if backend == "none":
        return None
    spec = InitramfsSpec(release, moddir, kernel_config=config, modules=extra)
    return make_initramfs(backend, spec, out, root=root).path


def _record(
    target: Target,
    package: str,
    arch: str,
    release: str,
    layout: str,
    backend: str,
    cmdline: str,
    p: Placement,
    outcomes: Sequence[ModuleOutcome],
    extra: tuple[str, ...],
    old: State,
) -> KernelRecord:
    moddir, headers = target.modules_dir(release), target.headers_dir(release)
    prior = old.kernels.get(release)
    return KernelRecord(
        release=release,
        layout=layout,
        package=package,
        arch=arch,
        seq=old.next_seq,
        initramfs=backend,
        cmdline=cmdline,
        modules_dir=moddir,
        headers_dir=headers,
        image=p.image,
        initrd=p.initrd,
        entry=p.entry,
        uki=p.uki,
        uki_signer=p.uki_signer,
        files=tuple(p.files),
        dirs=(moddir, headers, *p.dirs),
        initramfs_modules=extra,
        known_good=prior.known_good if prior else False,
        bootable=not blocks_default(outcomes),
        external_modules=tuple(module_record(o) for o in outcomes),
    )
