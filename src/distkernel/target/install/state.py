"""What distkernel installed in a root: ROOT/var/lib/distkernel/state.json, one record
per kernel release (its layout, every file it placed with its hash), which is default,
which are known-good. Written only through a transaction (journal, then rename)."""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from distkernel.core.cache import sha256_file
from distkernel.core.errors import UserError
from distkernel.core.paths import STATE, plain_name
from distkernel.target.install.counting import find

if TYPE_CHECKING:
    from distkernel.target.extmod.builder import ModuleOutcome


@dataclass(frozen=True)
class PlacedFile:
    """A file or symlink distkernel put in the root (path relative to the root)."""

    path: str
    sha256: str = ""  # regular files
    link: str = ""  # symlinks: their target


def on_disk(root: Path, f: PlacedFile) -> bool:
    """Is F still what distkernel placed (same link target, or same content)? A boot
    entry the boot loader or systemd-bless-boot renamed (its counter) still is."""
    p = root / (f.path if f.link else find(root, f.path) or f.path)
    with contextlib.suppress(OSError):
        if f.link:
            return os.readlink(p) == f.link
        return not p.is_symlink() and p.is_file() and sha256_file(p) == f.sha256
    return False


@dataclass(frozen=True)
class ModuleRecord:
    """An external module's outcome for this kernel (from distkernel.target.extmod)."""

    name: str
    version: str
    ok: bool
    required: bool
    reason: str = ""
    log: str = ""  # its build log, absolute
    status: str = ""  # built | failed | skipped | excluded ("" in records written before it)


def module_record(o: ModuleOutcome) -> ModuleRecord:
    """What install's state keeps of an outcome (`list` shows it)."""
    return ModuleRecord(o.name, o.version, o.ok, o.required, o.reason, str(o.log) if o.log else "", o.status)


@dataclass(frozen=True)
class Origin:
    """Where a kernel installed from a binhost came from: its mirrors, in order, and its
    index entry's headers part, so that `modules add` can fetch the headers later from
    the same binhost, checked against what the signed index said then."""

    urls: tuple[str, ...]
    manifest_sha256: str  # of the package both parts carry
    headers_path: str  # packages/FILE, relative to each URL
    headers_size: int
    headers_sha256: str
    package: str = ""  # or: the package file it was installed from here (absolute), without its headers

    @classmethod
    def local(cls, package: Path, manifest_sha256: str) -> Origin:
        """A package file installed without its headers tree: `modules add` takes them
        from the same file later, while it is there and carries the same manifest."""
        return cls((), manifest_sha256, "", 0, "", package=str(package.resolve()))

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Origin:
        return cls(**{**doc, "urls": tuple(doc["urls"])})


@dataclass(frozen=True)
class KernelRecord:
    release: str
    layout: str
    package: str  # the package file name it came from
    arch: str
    seq: int  # install order: rollback picks the previous one
    initramfs: str  # backend: builtin, dracut or none
    cmdline: str
    modules_dir: str  # relative to the root
    headers_dir: str  # relative to the root
    image: str = ""  # the kernel image (or the UKI) the boot loader starts
    initrd: str = ""
    entry: str = ""  # BLS entry or grub.cfg; "" for plain
    uki: str = ""
    uki_signer: str = ""  # subject of the db certificate that signed the UKI (secure boot); "" unsigned
    files: tuple[PlacedFile, ...] = ()  # every boot file of this kernel, checked by `recover`
    dirs: tuple[str, ...] = ()  # folders owned whole (modules, headers, a BLS entry folder)
    initramfs_modules: tuple[str, ...] = ()  # extra modules its initramfs carries (external ones)
    known_good: bool = False
    bootable: bool = True  # False when a required external module failed: never made default
    external_modules: tuple[ModuleRecord, ...] = ()
    headers: bool = True  # False: installed from the kernel part alone; headers_dir holds only .config
    origin: Origin | None = None  # installed from a binhost, or from a file without its headers

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> KernelRecord:
        doc = dict(doc)
        doc["files"] = tuple(PlacedFile(**f) for f in doc.get("files", ()))
        doc["external_modules"] = tuple(ModuleRecord(**m) for m in doc.get("external_modules", ()))
        doc["dirs"] = tuple(doc.get("dirs", ()))
        doc["initramfs_modules"] = tuple(doc.get("initramfs_modules", ()))
        doc["origin"] = Origin.from_json(doc["origin"]) if doc.get("origin") else None
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in doc.items() if k in known})


@dataclass(frozen=True)
class State:
    kernels: dict[str, KernelRecord] = field(default_factory=dict)
    default: str | None = None
    shared: tuple[PlacedFile, ...] = ()  # files of no one kernel: vmlinuz links, grub.cfg, loader.conf
    next_seq: int = 1

    def ordered(self) -> list[KernelRecord]:
        """Newest install first."""
        return sorted(self.kernels.values(), key=lambda k: k.seq, reverse=True)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": 1,
            "default": self.default,
            "next_seq": self.next_seq,
            "kernels": {r: k.to_json() for r, k in sorted(self.kernels.items())},
            "shared": [asdict(f) for f in self.shared],
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> State:
        return cls(
            kernels={r: KernelRecord.from_json(k) for r, k in doc.get("kernels", {}).items()},
            default=doc.get("default"),
            shared=tuple(PlacedFile(**f) for f in doc.get("shared", ())),
            next_seq=int(doc.get("next_seq", 1)),
        )

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=1, sort_keys=True) + "\n"


def state_path(root: Path) -> Path:
    return root / STATE


def read_state(root: Path) -> State:
    """The committed state, without looking at an interrupted transaction."""
    path = state_path(root)
    try:
        state = State.from_json(json.loads(path.read_text()))
        for release, k in state.kernels.items():  # releases name files: a hostile one must not
            plain_name(release, "release")
            if k.release != release:
                raise ValueError(f"kernel {release!r} records release {k.release!r}")
        return state
    except FileNotFoundError:
        return State()
    except UserError as e:
        raise UserError(
            f"{path}: {e.message}; repair it, or move it away to make distkernel forget its kernels"
        ) from None
    except (ValueError, TypeError, KeyError, AttributeError) as e:  # written atomically: edited by hand
        raise UserError(
            f"{path}: unreadable ({type(e).__name__}: {e}); repair it, or move it away to make distkernel "
            "forget the kernels it installed there"
        ) from None
