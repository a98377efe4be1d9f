"""What goes into a package from a finished build: the kernel image, System.map and
config; the stripped modules tree; and a headers tree to build external modules."""

from __future__ import annotations

import os
import posixpath
import shutil
from pathlib import Path

from distkernel.build.compile.kbuild import Kbuild
from distkernel.build.config.values import read_config
from distkernel.build.package.format import HEADERS_DIR, KERNEL_DIR, MODULES_DIR
from distkernel.build.package.writer import Member
from distkernel.core.tools import run

# modules_install also writes depmod's indexes: they are derived, and `install` runs
# depmod against the target root, so only depmod's inputs are shipped.
MODULE_INDEXES = (
    "modules.dep",
    "modules.dep.bin",
    "modules.alias",
    "modules.alias.bin",
    "modules.softdep",
    "modules.symbols",
    "modules.symbols.bin",
    "modules.devname",
    "modules.builtin.bin",
    "modules.builtin.alias.bin",
    "modules.weakdep",
)


def _walk(top: Path, rel: str) -> list[str]:
    """Files and symlinks below top/rel, as paths relative to top, sorted. Directory
    entries tell their own type: no stat per file (the headers' 6,700 files are walked
    while the compile finishes, and again after it)."""
    base = top / rel
    if base.is_file() or base.is_symlink():
        return [rel]
    if not base.is_dir():
        return []
    cut = len(str(top)) + 1
    out, folders = [], [str(base)]
    while folders:
        with os.scandir(folders.pop()) as entries:
            for e in entries:
                if e.is_symlink() or e.is_file(follow_symlinks=False):
                    out.append(e.path[cut:])
                elif e.is_dir(follow_symlinks=False):
                    folders.append(e.path)
    return sorted(out)


def _file_member(arc: str, path: Path) -> Member:
    if path.is_symlink():
        return Member(arc, link=os.readlink(path))
    return Member(arc, source=path, executable=os.access(path, os.X_OK))


def kernel_members(kb: Kbuild, image: Path) -> list[Member]:
    bd = kb.build_dir
    return [
        Member(f"{KERNEL_DIR}/vmlinuz", source=image),
        Member(f"{KERNEL_DIR}/System.map", source=bd / "System.map"),
        Member(f"{KERNEL_DIR}/config", source=bd / ".config"),
    ]


def install_modules(kb: Kbuild, release: str, stage: Path, log: Path) -> Path | None:
    """modules_install (stripped) into `stage`; the modules dir, or None without modules."""
    if read_config(kb.build_dir / ".config").get("CONFIG_MODULES") != "y":
        return None
    shutil.rmtree(stage, ignore_errors=True)
    kb.make("modules_install", log=log, extra=[f"INSTALL_MOD_PATH={stage}", "INSTALL_MOD_STRIP=1", "DEPMOD=true"])
    moddir = stage / "lib" / "modules" / release
    for name in ("build", "source", *MODULE_INDEXES):  # build/source are absolute links here
        (moddir / name).unlink(missing_ok=True)
    return moddir


def module_members(moddir: Path | None) -> list[Member]:
    if moddir is None:
        return []
    return [_file_member(f"{MODULES_DIR}/{rel}", moddir / rel) for rel in _walk(moddir, ".") if rel != "."]


# Not needed to build external modules: the kbuild maintainers' own slim-down of the
# headers package (install-extmod-build, 2024), applied to every kernel version.
SKIP_SCRIPTS = ("scripts/atomic/", "scripts/dtc/", "scripts/kconfig/", "scripts/package/")
# devicetable-offsets.s: compiler output with source lines as comments, only when the
# compiler could read the source (not on a distcc host), from which the shipped
# devicetable-offsets.h is made: packages would differ with where it was compiled.
SKIP_FILES = ("scripts/unifdef", "scripts/mod/mk_elfconfig", "scripts/mod/devicetable-offsets.s")
KEEP_CONFIG = ("include/config/auto.conf", "include/config/kernel.release")


def _skipped(rel: str) -> bool:
    name = posixpath.basename(rel)
    if name.endswith(".o") or (name.startswith(".") and name.endswith(".cmd")):
        return True
    if rel.startswith("include/config/"):
        return rel not in KEEP_CONFIG
    return rel.startswith(SKIP_SCRIPTS) or rel in SKIP_FILES


def header_paths(kb: Kbuild) -> dict[str, Path]:
    """The kernel's own selection (scripts/package/builddeb, deploy_kernel_headers),
    slimmed as upstream later did: top and arch Makefiles, include/ and scripts/ of the
    source, the arch's include and scripts folders, then the build's generated headers,
    host tools, Module.symvers, objtool and the .config. Build files win over sources."""
    src, bd, arch = kb.source.path, kb.build_dir, kb.arch.srcarch
    chosen: dict[str, Path] = {}

    def take(top: Path, rel: str) -> None:
        for f in _walk(top, rel):
            if not _skipped(f):
                chosen[f] = top / f

    for p in [*src.glob("Makefile*"), *(src / "arch" / arch).glob("Makefile*")]:
        chosen[str(p.relative_to(src))] = p
    take(src, "include")
    take(src, "scripts")
    for dirpath, dirnames, filenames in os.walk(src / "arch" / arch):
        dirnames.sort()
        here = Path(dirpath)
        for name in filenames:
            if name in ("Kbuild.platforms", "Platform"):
                chosen[str((here / name).relative_to(src))] = here / name
        for name in dirnames:
            if name in ("include", "scripts"):
                take(src, str((here / name).relative_to(src)))
    built = [f"arch/{arch}/include/generated", "include", "scripts", "Module.symvers"]
    if read_config(bd / ".config").get("CONFIG_OBJTOOL") == "y":
        built.append("tools/objtool/objtool")
    for rel in built:
        if (bd / rel).exists():
            take(bd, rel)
    chosen[".config"] = bd / ".config"
    return chosen


def _link_ok(rel: str, target: str, chosen: dict[str, Path]) -> bool:
    """Keep a symlink only when it points at something shipped (dtc's include-prefixes
    point into other arches' trees, which the headers do not carry)."""
    if target.startswith("/"):
        return False
    dest = posixpath.normpath(posixpath.join(posixpath.dirname(rel), target))
    return dest in chosen or any(k.startswith(dest + "/") for k in chosen)


def _host_binary(arc: str, path: Path, tmp: Path) -> Member:
    """A host tool built in the build dir (fixdep, modpost, objtool...), stripped of its
    debug info and build-id: objtool is compiled with -g, so both would carry the build
    folder's path and make packages built in different folders differ."""
    out = tmp / arc.replace("/", "_")
    run(["objcopy", "--strip-debug", "--remove-section=.note.gnu.build-id", path, out], what=f"stripping {arc}")
    return Member(arc, data=out.read_bytes(), executable=True)


def _is_elf(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(4) == b"\x7fELF"


def header_members(kb: Kbuild, tmp: Path, chosen: dict[str, Path] | None = None) -> list[Member]:
    """The headers tree's members (CHOSEN: header_paths, when already listed); host
    tools are stripped into TMP (emptied first)."""
    chosen = header_paths(kb) if chosen is None else chosen
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    out = []
    for rel, path in chosen.items():
        arc = f"{HEADERS_DIR}/{rel}"
        if path.is_symlink():
            if _link_ok(rel, os.readlink(path), chosen):
                out.append(_file_member(arc, path))
        elif path.is_relative_to(kb.build_dir) and _is_elf(path):
            out.append(_host_binary(arc, path, tmp))
        else:
            out.append(_file_member(arc, path))
    return out
