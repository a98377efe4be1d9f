"""Which modules (and firmware) an initramfs carries: read depmod's output for one
release, close a set of modules over modules.dep and modules.softdep, and find the
firmware each module names in its .modinfo."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from distkernel.core.errors import UserError
from distkernel.target.initramfs.compress import decompress
from distkernel.target.initramfs.elf import modinfo


def _norm(name: str) -> str:
    return name.replace("-", "_")


def module_name(path: str) -> str:
    """kernel/fs/ext4/ext4.ko.zst -> ext4; dashes and underscores are one to the kernel."""
    base = path.rsplit("/", 1)[-1]
    return _norm(base.split(".ko", 1)[0])


def plain_path(path: str) -> str:
    """A module's path with any compression suffix dropped (the image stores it plain)."""
    head, sep, _ = path.partition(".ko")
    return head + sep if sep else path


def read_module(path: Path) -> bytes:
    """A module's ELF bytes, whether it is stored plain or .zst/.xz/.gz."""
    return decompress(path.read_bytes())


@dataclass(frozen=True)
class ModuleIndex:
    """depmod's view of lib/modules/RELEASE."""

    dir: Path
    paths: dict[str, str]  # name -> path relative to dir, as in modules.dep
    deps: dict[str, tuple[str, ...]]  # name -> its dependencies, as modules.dep lists them
    softdeps: dict[str, tuple[tuple[str, ...], tuple[str, ...]]]  # name -> (pre, post)
    builtin: frozenset[str]
    alias_lines: tuple[tuple[str, str], ...]  # (line, module name) from modules.alias

    def closure(self, wanted: Iterable[str]) -> tuple[str, ...]:
        """Wanted modules and all they need, in load order (dependencies and softdep
        "pre" modules before the module, "post" ones after). Missing softdeps are optional."""
        order: list[str] = []
        seen: set[str] = set()

        def visit(name: str) -> None:
            if name not in self.paths:
                for real in self.resolve(name):
                    visit(real)
                return
            if name in seen:
                return
            seen.add(name)
            pre, post = self.softdeps.get(name, ((), ()))
            for dep in (*pre, *reversed(self.deps[name])):
                visit(dep)
            order.append(name)
            for dep in post:
                visit(dep)

        for name in wanted:
            visit(name)
        return tuple(order)

    def resolve(self, name: str) -> list[str]:
        """A module name, or the modules an alias (e.g. a softdep's "crc32c") stands for."""
        name = _norm(name)
        if name in self.paths:
            return [name]
        return sorted({m for line, m in self.alias_lines if fnmatch.fnmatchcase(name, _norm(line.split()[1]))})

    def matching(self, globs: Sequence[str]) -> list[str]:
        return sorted(n for n, p in self.paths.items() if any(fnmatch.fnmatchcase(plain_path(p), g) for g in globs))

    def unknown(self, names: Iterable[str]) -> list[str]:
        return [n for n in names if not self.resolve(n) and _norm(n) not in self.builtin]

    def firmware(self, modules: Iterable[str]) -> list[str]:
        return firmware_of(read_module(self.dir / self.paths[m]) for m in modules)


def firmware_of(modules: Iterable[bytes]) -> list[str]:
    """The firmware files (decompressed) modules name in their .modinfo."""
    return sorted({name for data in modules for name in modinfo(data, "firmware")})


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return []


def read_index(modules_dir: Path) -> ModuleIndex:
    """Parse the depmod output in MODULES_DIR; a missing dir means a kernel without modules."""
    dep_file = modules_dir / "modules.dep"
    if modules_dir.is_dir() and not dep_file.is_file() and next(modules_dir.rglob("*.ko*"), None):
        raise UserError(f"{modules_dir} has modules but no modules.dep; run `depmod -b ROOT RELEASE` first")
    paths: dict[str, str] = {}
    deps: dict[str, tuple[str, ...]] = {}
    for line in _lines(dep_file):
        path, sep, rest = line.partition(":")
        if sep:
            name = module_name(path)
            paths[name] = path
            deps[name] = tuple(module_name(d) for d in rest.split())
    softdeps: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}
    for line in _lines(modules_dir / "modules.softdep"):
        words = line.split()
        if len(words) < 2 or words[0] != "softdep":
            continue
        pre: list[str] = []
        post: list[str] = []
        bucket = pre
        for w in words[2:]:
            if w in ("pre:", "post:"):
                bucket = pre if w == "pre:" else post
            else:
                bucket.append(module_name(w))
        softdeps[module_name(words[1])] = (tuple(pre), tuple(post))
    builtin = frozenset(module_name(p) for p in _lines(modules_dir / "modules.builtin") if p.strip())
    aliases = tuple((line, module_name(line.split()[-1])) for line in _lines(modules_dir / "modules.alias")
                    if line.startswith("alias "))  # fmt: skip
    return ModuleIndex(modules_dir, paths, deps, softdeps, builtin, aliases)


def find_firmware(names: Iterable[str], dirs: Sequence[Path]) -> tuple[dict[str, Path], list[str]]:
    """Firmware name -> file (plain or .zst/.xz, as the kernel's loader reads them), and the missing names."""
    found: dict[str, Path] = {}
    missing: list[str] = []
    for name in names:
        for d in dirs:
            hit = next((d / (name + s) for s in ("", ".zst", ".xz") if (d / (name + s)).is_file()), None)
            if hit:
                found[name + hit.name[len(Path(name).name) :]] = hit
                break
        else:
            missing.append(name)
    return found, missing
