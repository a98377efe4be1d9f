"""Registered module sources, under the root they serve:

    ROOT/var/lib/distkernel/modules/NAME/record.json        what was registered (the commit point)
    ROOT/var/lib/distkernel/modules/NAME/source-HASH/       a copy of the source, named by its content
    ROOT/var/lib/distkernel/modules/NAME/kernels/KREL.json  the last build for one kernel
    ROOT/var/lib/distkernel/modules/NAME/logs/KREL.log      its log

A new source is staged, then record.json is replaced atomically, then the old copy goes."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from distkernel.core.cache import atomic_write_text, flocked, fsync_dir
from distkernel.core.errors import UserError
from distkernel.core.paths import EXTMOD_WORK, MODULE_REGISTRY
from distkernel.target.extmod import dkms
from distkernel.target.extmod.kernel import Kernel

REGISTRY = MODULE_REGISTRY
DKMS_TREE = f"{EXTMOD_WORK}/dkms"  # dkms's $dkms_tree while evaluating at add time
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+~-]*$")  # ~ as in Debian versions (0~2022+git)
# Build leftovers a source folder may carry: never copied, so every build starts clean.
_LEFTOVERS = ("*.o", "*.ko", "*.mod", "*.mod.c", ".*.cmd", "Module.symvers", "modules.order", ".tmp_versions", ".git")


@dataclass(frozen=True)
class Registered:
    name: str
    version: str
    kind: str  # "kbuild" (Kbuild/Makefile) or "dkms" (dkms.conf)
    source: str  # folder of the copy inside the entry: source-HASH
    source_sha256: str
    origin: str  # where it was registered from
    initramfs: bool  # its modules go into the initramfs
    required: bool  # a kernel it fails for never becomes the default
    autoinstall: bool  # rebuilt by every install (dkms AUTOINSTALL; always for kbuild)
    modules: tuple[str, ...] = ()  # .ko names it declares (dkms); kbuild: found after a build
    ignored: tuple[str, ...] = ()  # dkms.conf keys distkernel does not act on, with why
    package_name: str = ""  # dkms: PACKAGE_NAME and PACKAGE_VERSION, dkms's $module and
    package_version: str = ""  # $module_version (name and version may be overridden)
    remake_initrd: bool = False  # dkms.conf REMAKE_INITRD=yes

    def source_dir(self, root: Path) -> Path:
        return entry_dir(root, self.name) / self.source

    @property
    def dkms_module(self) -> tuple[str, str]:
        """dkms's $module and $module_version for this registration."""
        return self.package_name or self.name, self.package_version or self.version


@dataclass(frozen=True)
class KernelStatus:
    """The last build of one registered module for one kernel."""

    release: str
    version: str
    status: str  # built | failed | skipped (AUTOINSTALL) | excluded (BUILD_EXCLUSIVE_*)
    reason: str = ""
    log: str = ""
    files: tuple[str, ...] = ()  # installed, relative to lib/modules/RELEASE
    modules: tuple[str, ...] = ()  # module names (without .ko) installed
    signed: str = ""  # signed | unsigned | "" when the kernel does not sign modules
    seconds: float = 0.0


STATUSES = ("built", "failed", "skipped", "excluded")


def registry_dir(root: Path) -> Path:
    return root / REGISTRY


def entry_dir(root: Path, name: str) -> Path:
    return registry_dir(root) / name


def check_name(value: str, what: str) -> str:
    if not _NAME.match(value):
        raise UserError(f"{what} {value!r} is not valid; use letters, digits and _ . + ~ - (not starting with . + ~ -)")
    return value


def tree_sha256(top: Path) -> str:
    """Content hash of a source folder: relative paths, modes and bytes, in order."""
    h = hashlib.sha256()
    for path in sorted(p for p in top.rglob("*") if not p.is_dir() or p.is_symlink()):
        rel = path.relative_to(top).as_posix()
        h.update(rel.encode() + b"\0")
        if path.is_symlink():
            h.update(b"L" + os.readlink(path).encode())
        else:
            h.update(b"X" if os.access(path, os.X_OK) else b"F")
            h.update(path.read_bytes())
        h.update(b"\0")
    return h.hexdigest()


def locked(root: Path) -> contextlib.AbstractContextManager[None]:
    """Serialise registry changes and builds in one root (not re-entrant: take it once,
    at the entry points)."""
    return flocked(registry_dir(root) / ".lock")


def add(
    root: Path,
    src: Path,
    *,
    name: str | None = None,
    version: str | None = None,
    initramfs: bool = False,
    required: bool = False,
    kernel: Kernel | None = None,
) -> Registered:
    """Copy SRC into the registry (replacing an earlier source of the same name). A
    dkms.conf is evaluated for KERNEL (default: the running kernel's release, as `dkms
    add` does) to learn its name, version and modules, and refused if dkms would."""
    if not src.is_dir():
        raise UserError(f"{src}: not a folder; give the folder holding the module's Kbuild, Makefile or dkms.conf")
    conf = _conf_at_add(root, src, kernel, version) if (src / "dkms.conf").is_file() else None
    if conf is None and not any((src / f).is_file() for f in ("Kbuild", "Makefile")):
        raise UserError(f"{src}: no Kbuild, Makefile or dkms.conf; point at the module's source folder")
    name = check_name(name or (conf.package_name if conf else src.resolve().name), "module name")
    if version or conf:
        check_name(version or (conf.package_version if conf else ""), "module version")
    entry = entry_dir(root, name)
    stage = entry / f".source.stage-{os.getpid()}"
    shutil.rmtree(stage, ignore_errors=True)
    entry.mkdir(parents=True, exist_ok=True)
    try:
        shutil.copytree(src, stage, symlinks=True, ignore=shutil.ignore_patterns(*_LEFTOVERS))
        digest = tree_sha256(stage)
        record = Registered(
            name=name,
            version=version or (conf.package_version if conf else digest[:12]),
            kind="dkms" if conf else "kbuild",
            source=f"source-{digest[:16]}",
            source_sha256=digest,
            origin=str(src.resolve()),
            initramfs=initramfs,
            required=required,
            autoinstall=conf.autoinstall if conf else True,
            modules=tuple(m.dest_name for m in conf.modules) if conf else (),
            ignored=_ignored(root, conf) if conf else (),
            package_name=conf.package_name if conf else "",
            package_version=conf.package_version if conf else "",
            remake_initrd=conf.remake_initrd if conf else False,
        )
        final = entry / record.source
        if final.exists():
            shutil.rmtree(stage)
        else:
            os.replace(stage, final)
            fsync_dir(entry)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        if not (entry / "record.json").exists() and not any(entry.glob("source-*")):
            shutil.rmtree(entry, ignore_errors=True)  # a first registration that failed leaves nothing
    atomic_write_text(entry / "record.json", json.dumps(asdict(record), indent=1) + "\n")
    for old in entry.glob("source-*"):
        if old.name != record.source:
            shutil.rmtree(old)
    return record


def _ignored(root: Path, conf: dkms.DkmsConf) -> tuple[str, ...]:
    """What of CONF distkernel will not act on in ROOT, with why."""
    if conf.post_install and root.resolve() != Path("/"):
        return (*conf.ignored, "POST_INSTALL (not run: the root is not this machine)")
    return conf.ignored


def _conf_at_add(root: Path, src: Path, kernel: Kernel | None, version: str | None) -> dkms.DkmsConf:
    """SRC's dkms.conf evaluated as `dkms add` does (PACKAGE_VERSION may come from --version)."""
    release = kernel.release if kernel else os.uname().release
    ctx = dkms.Context(
        kernelver=release,
        arch=kernel.machine if kernel and kernel.machine else os.uname().machine,
        kernel_source_dir=kernel.headers if kernel else root / "lib/modules" / release / "build",
        dkms_tree=root / DKMS_TREE,
        source_tree=src.resolve().parent,
        install_tree=kernel.modules_dir.parent if kernel else root / "lib/modules",
        module="",
        module_version=version or "",
        running_distribution=dkms.running_distribution(root),
    )
    return dkms.evaluate(src / "dkms.conf", ctx, overrides=root / "etc/dkms", version=version)


def _load_record(path: Path) -> Registered:
    try:
        doc = json.loads(path.read_text())
        doc["modules"], doc["ignored"] = tuple(doc.get("modules", ())), tuple(doc.get("ignored", ()))
        return Registered(**{k: v for k, v in doc.items() if k in Registered.__dataclass_fields__})
    except (ValueError, TypeError, KeyError) as e:
        raise UserError(f"{path}: damaged registry record ({e}); `distkernel modules add` the source again") from None


def get(root: Path, name: str) -> Registered:
    path = entry_dir(root, name) / "record.json"
    if not path.is_file():
        known = ", ".join(r.name for r in registered(root)) or "none"
        raise UserError(f"no module {name!r} is registered in {root} (registered: {known})")
    return _load_record(path)


def registered(root: Path) -> list[Registered]:
    top = registry_dir(root)
    return [_load_record(p) for p in sorted(top.glob("*/record.json"))] if top.is_dir() else []


# The real dkms's tree (its package ships the folder): where it is installed, its kernel
# hook builds modules against /lib/modules/RELEASE/build for every new kernel.
DKMS_TREE = "var/lib/dkms"


def needs_headers(root: Path) -> bool:
    """Whether a kernel installed into ROOT needs its headers tree: ROOT builds external
    modules (registered with distkernel, or the real dkms is installed there)."""
    return bool(registered(root)) or (root / DKMS_TREE).is_dir()


def drop(root: Path, name: str) -> None:
    """Forget NAME: the record first (the commit point), then its copy, statuses and logs."""
    entry = entry_dir(root, name)
    (entry / "record.json").unlink(missing_ok=True)
    fsync_dir(entry)
    shutil.rmtree(entry)


def log_path(root: Path, name: str, release: str) -> Path:
    return entry_dir(root, name) / "logs" / f"{release}.log"


def save_status(root: Path, name: str, status: KernelStatus) -> None:
    atomic_write_text(status_path(root, name, status.release), json.dumps(asdict(status)) + "\n")


def status_path(root: Path, name: str, release: str) -> Path:
    return entry_dir(root, name) / "kernels" / f"{release}.json"


def load_status(root: Path, name: str, release: str) -> KernelStatus | None:
    """The last build of NAME for RELEASE; None when it was never built. A status that
    cannot be read is not "never built" (its files may still be installed): UserError."""
    path = status_path(root, name, release)
    try:
        doc = json.loads(path.read_bytes())
        if not isinstance(doc, dict) or doc.get("release") != release or doc.get("status") not in STATUSES:
            raise ValueError("not a build status")
        doc["files"], doc["modules"] = tuple(doc.get("files", ())), tuple(doc.get("modules", ()))
        status = KernelStatus(**{k: v for k, v in doc.items() if k in KernelStatus.__dataclass_fields__})
        if not all(isinstance(f, str) and ".." not in Path(f).parts and not f.startswith("/") for f in status.files):
            raise ValueError("a file outside lib/modules")
        return status
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError) as e:
        reason = e.strerror if isinstance(e, OSError) else str(e)
        raise UserError(
            f"{path}: damaged module build status ({reason}); delete it, then run "
            f"`distkernel modules rebuild {name} --kernel {release}`"
        ) from None


def statuses(root: Path, name: str) -> list[KernelStatus]:
    top = entry_dir(root, name) / "kernels"
    found = (load_status(root, name, p.stem) for p in sorted(top.glob("*.json"))) if top.is_dir() else iter(())
    return [s for s in found if s is not None]


def forget_status(root: Path, name: str, release: str) -> None:
    status_path(root, name, release).unlink(missing_ok=True)
