"""`modules add | remove | rebuild | list` on a root: the registry, builds for the
installed kernels (install's state), depmod, each kernel's record of module outcomes,
and the initramfs images that carry them.

Locks, always in this order and each taken once: install's root lock (`hold`) for the
whole command, since it changes kernels' modules dirs that an install or a prune could
otherwise replace underneath it; inside it, the registry lock for the builds. Install
takes them in the same order (root, then registry in build_for_kernel)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from distkernel.core.errors import UserError
from distkernel.target.extmod import builder, registry
from distkernel.target.extmod.builder import Job, ModuleOutcome
from distkernel.target.extmod.for_kernel import initramfs_modules
from distkernel.target.extmod.kernel import Kernel
from distkernel.target.extmod.placement import depmod, uninstall
from distkernel.target.extmod.registry import KernelStatus, Registered
from distkernel.target.install import Held, State, hold, load_state
from distkernel.target.install.state import module_record


@dataclass(frozen=True)
class Change:
    """What one command did."""

    modules: tuple[Registered, ...]
    outcomes: tuple[ModuleOutcome, ...] = ()
    refreshed: tuple[str, ...] = ()  # releases whose initramfs was made again
    kernels: tuple[str, ...] = ()  # the kernels it looked at
    notes: tuple[str, ...] = ()
    default: str | None = None  # the root's default kernel (the command never changes it)

    @property
    def failed(self) -> tuple[ModuleOutcome, ...]:
        return tuple(o for o in self.outcomes if not o.ok)

    @property
    def default_lacks_required(self) -> tuple[ModuleOutcome, ...]:
        """--required modules that failed for the default kernel: it stays the default."""
        return tuple(o for o in self.failed if o.required and o.release == self.default)


def _kernels(root: Path, state: State) -> dict[str, Kernel]:
    return {
        rec.release: Kernel.from_headers(rec.release, root / rec.headers_dir, root / rec.modules_dir)
        for rec in state.ordered()
    }


def installed_kernels(root: Path) -> dict[str, Kernel]:
    """Kernels distkernel installed in ROOT, described by their installed headers."""
    return _kernels(root, load_state(root))


def _record(held: Held, outcomes: Sequence[ModuleOutcome]) -> None:
    """Each kernel's outcomes into install's state (what `distkernel list` shows)."""
    for release in dict.fromkeys(o.release for o in outcomes):
        held.update_modules(release, changed=[module_record(o) for o in outcomes if o.release == release])


def _refresh(held: Held, releases: Iterable[str]) -> tuple[str, ...]:
    """Make the initramfs of each release again, with the external modules it must carry."""
    state = held.state()
    done = []
    for release in releases:
        rec = state.kernels.get(release)
        if rec is not None and rec.initramfs != "none":
            held.refresh_initramfs(release, extra_modules=initramfs_modules(held.root, release))
            done.append(release)
    return tuple(done)


def _build(
    root: Path, modules: Sequence[Registered], kernels: Sequence[Kernel], cores: int | None
) -> list[ModuleOutcome]:
    """Build (under the registry lock) and depmod each kernel whose modules changed."""
    before = {(m.name, k.release): registry.load_status(root, m.name, k.release) for m in modules for k in kernels}
    outcomes = builder.build_all(root, [Job(m, k, explicit=True) for k in kernels for m in modules], cores=cores)
    for kernel in kernels:
        mine = [o for o in outcomes if o.release == kernel.release]
        had = any((prev := before[(o.name, kernel.release)]) is not None and prev.files for o in mine)
        if (had or any(o.files for o in mine)) and kernel.modules_dir.is_dir():
            depmod(kernel.modules_dir, kernel.release)
    return outcomes


def add_module(
    root: Path,
    src: Path,
    *,
    name: str | None = None,
    version: str | None = None,
    initramfs: bool = False,
    required: bool = False,
    cores: int | None = None,
) -> Change:
    with hold(root) as held:
        state = held.state()
        kernels = _kernels(root, state)
        with registry.locked(root):
            carried_before = {m.name for m in registry.registered(root) if m.initramfs}
            module = registry.add(
                root,
                src,
                name=name,
                version=version,
                initramfs=initramfs,
                required=required,
                kernel=_default(kernels, state),
            )
            outcomes = _build(root, [module], list(kernels.values()), cores)
        _record(held, outcomes)
        carried = module.initramfs or module.remake_initrd or module.name in carried_before
        refreshed = _refresh(held, [o.release for o in outcomes]) if carried else ()
    notes = (f"no kernel installed in {root} yet: the next `distkernel install` builds it",) if not kernels else ()
    return Change((module,), tuple(outcomes), refreshed, tuple(kernels), notes, state.default)


def rebuild(
    root: Path,
    names: Sequence[str] = (),
    *,
    release: str | None = None,
    all_kernels: bool = False,
    cores: int | None = None,
) -> Change:
    """Build NAMES (all registered when empty) for RELEASE, or every installed kernel, or
    (neither) the default kernel."""
    with hold(root) as held:
        state = held.state()
        kernels = _kernels(root, state)
        if not all_kernels:
            release = release or state.default
            if release is not None and release not in kernels:
                known = ", ".join(kernels) or "none"
                raise UserError(f"--kernel {release}: not installed in {root} by distkernel (installed: {known})")
            kernels = {release: kernels[release]} if release else kernels
        with registry.locked(root):
            modules = [registry.get(root, n) for n in names] if names else registry.registered(root)
            if not modules:
                raise UserError(f"no module is registered in {root}; register one with `distkernel modules add SRC`")
            outcomes = _build(root, modules, list(kernels.values()), cores)
        _record(held, outcomes)
        carried = any(m.initramfs or m.remake_initrd for m in modules)
        refreshed = _refresh(held, kernels) if carried else ()
    return Change(tuple(modules), tuple(outcomes), refreshed, tuple(kernels), default=state.default)


def remove_module(root: Path, name: str) -> Change:
    """Take NAME out of every kernel (and initramfs), then out of the registry."""
    with hold(root) as held:
        state = held.state()
        kernels = _kernels(root, state)
        with registry.locked(root):
            module = registry.get(root, name)
            touched = []
            for status in registry.statuses(root, name):
                kernel = kernels.get(status.release)
                if kernel is None or not status.files:
                    continue
                uninstall(kernel.modules_dir, status.files)
                registry.forget_status(root, name, status.release)
                if kernel.modules_dir.is_dir():
                    depmod(kernel.modules_dir, kernel.release)
                touched.append(status.release)
            registry.drop(root, name)
        for k in state.ordered():
            if any(m.name == name for m in k.external_modules):
                held.update_modules(k.release, removed=[name])
        refreshed = _refresh(held, touched) if module.initramfs else ()
    return Change((module,), (), refreshed, tuple(touched), default=state.default)


def listing(root: Path) -> list[tuple[Registered, list[KernelStatus]]]:
    """Every registered module with its last build for each kernel installed now (never
    the builds for kernels that were removed)."""
    kernels = set(installed_kernels(root))
    return [
        (m, [s for s in registry.statuses(root, m.name) if s.release in kernels]) for m in registry.registered(root)
    ]


def _default(kernels: dict[str, Kernel], state: State) -> Kernel | None:
    """The kernel a dkms.conf is first evaluated for: the default one, else any."""
    return kernels.get(state.default or "") or next(iter(kernels.values()), None)
