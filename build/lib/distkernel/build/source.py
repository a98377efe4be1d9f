"""Kernel sources: locate (debian:, tarball:, url:, dir:), verify the sha256 before
extracting, extract once into a cache keyed by content, apply patches, and report the
kernel version. Patched trees are hard-linked copies of the pristine one."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from distkernel.build.recipe import Recipe, resolve_ref
from distkernel.core import cache
from distkernel.core.download import deadline_for, download_file
from distkernel.core.errors import ToolError, UserError
from distkernel.core.tools import call, install_command, run

DEBIAN_SRC = Path("/usr/src")
STAMP = "distkernel-source.json"
MAX_SOURCE = 2 << 30  # a kernel tarball is ~150 MB; refuse a server that sends without end


@dataclass(frozen=True)
class SourceTree:
    path: Path
    version: str  # from the top Makefile, e.g. 6.1.192
    key: str  # content key of origin + patches
    date: int  # the source's own date (SOURCE_DATE_EPOCH)
    origin: str


def _debian_tarball(recipe: Recipe) -> Path:
    name = recipe.kernel.source_ref
    for ext in ("tar.xz", "tar.zst", "tar.bz2", "tar.gz"):
        candidate = DEBIAN_SRC / f"{name}.{ext}"
        if candidate.is_file():
            return candidate
    raise UserError(
        f"{recipe.line_of('kernel', 'source')}: kernel.source: Debian source `{name}` not found "
        f"in {DEBIAN_SRC}; install it: {install_command([name])}"
    )


def _tree_fingerprint(top: Path) -> str:
    """A key for a plain directory tree: paths, sizes and mtimes of every file (reading
    70k files' contents on each build would cost more than the no-op build itself)."""
    entries = []
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = sorted(d for d in dirnames if d != ".git")
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            entries.append(f"{os.path.relpath(full, top)}\0{st.st_size}\0{st.st_mtime_ns}")
    return cache.sha256_bytes("\n".join(entries).encode())


def base_key(recipe: Recipe) -> str:
    """Content key of the unpatched source, cheap enough for every build."""
    kind, ref = recipe.kernel.source_kind, recipe.kernel.source_ref
    if kind == "debian":
        return cache.sha256_file_memo(_debian_tarball(recipe))
    if kind in ("tarball", "url"):
        return recipe.kernel.sha256
    return "dir-" + _tree_fingerprint(resolve_ref(recipe, ref))


def source_key(recipe: Recipe) -> str:
    """Content key of the source as built: origin + the patches, in order."""
    return _patched_key(recipe, base_key(recipe))


def _patched_key(recipe: Recipe, base: str) -> str:
    if not recipe.kernel.patches:
        return base
    parts = [base] + [cache.sha256_file(p) for p in recipe.kernel.patches]
    return cache.sha256_bytes("\n".join(parts).encode())


def read_version(tree: Path) -> str:
    text = (tree / "Makefile").read_text(errors="replace")
    fields = {}
    for name in ("VERSION", "PATCHLEVEL", "SUBLEVEL", "EXTRAVERSION"):
        m = re.search(rf"^{name}[ \t]*=[ \t]*(\S*)", text, re.M)
        fields[name] = m.group(1) if m else ""
    if not fields["VERSION"]:
        raise UserError(f"{tree}: not a kernel source tree (no VERSION in Makefile)")
    version = ".".join(x for x in (fields["VERSION"], fields["PATCHLEVEL"], fields["SUBLEVEL"]) if x)
    return version + fields["EXTRAVERSION"]


def _source_date(tree: Path) -> int:
    if (tree / ".git").exists():
        done = call(["git", "-C", tree, "log", "-1", "--format=%ct"], ok=None)
        if done.code == 0 and done.output.strip().isdigit():
            return int(done.output.strip())
    return int((tree / "Makefile").stat().st_mtime)


def _find_top(root: Path) -> Path:
    if (root / "Makefile").is_file():
        return root
    tops = [d for d in root.iterdir() if d.is_dir() and (d / "Makefile").is_file()]
    if len(tops) != 1:
        raise UserError(f"{root}: the archive holds no single kernel tree (a top folder with a Makefile)")
    return tops[0]


def _download(recipe: Recipe) -> Path:
    want = recipe.kernel.sha256
    target = cache.cache_dir("downloads") / want
    if target.is_file():
        return target
    url = recipe.kernel.source_ref
    tmp = target.with_name(f".{want}.part-{os.getpid()}")
    try:
        got = download_file(
            url,
            tmp,
            limit=MAX_SOURCE,
            deadline=deadline_for(MAX_SOURCE // 4),
            hint="fix the URL",
            where=f"{recipe.line_of('kernel', 'source')}: kernel.source: ",
        )
        if got.sha256 != want:
            raise UserError(
                f"{recipe.line_of('kernel', 'sha256')}: kernel.sha256: {url} has sha256 {got.sha256}, "
                f"the recipe expects {want}; fix the URL or the hash"
            )
        os.replace(tmp, target)
    except OSError as e:
        raise UserError(f"{tmp}: cannot write the download ({e.strerror}); check the cache folder") from None
    finally:
        tmp.unlink(missing_ok=True)
    return target


def _tarball(recipe: Recipe) -> Path:
    kind = recipe.kernel.source_kind
    if kind == "debian":
        return _debian_tarball(recipe)
    if kind == "url":
        return _download(recipe)
    path = resolve_ref(recipe, recipe.kernel.source_ref)
    got = cache.sha256_file_memo(path)
    if got != recipe.kernel.sha256:
        raise UserError(
            f"{recipe.line_of('kernel', 'sha256')}: kernel.sha256: {path} has sha256 {got}, "
            f"the recipe expects {recipe.kernel.sha256}; fix the hash or the tarball"
        )
    return path


def _load_stamp(entry: Path, key: str) -> SourceTree | None:
    """The tree ENTRY's stamp records, or None when the stamp is missing or damaged
    (unreadable, another key, a tree name that is not a plain folder of the entry, a
    tree that is not a kernel tree)."""
    try:
        s = json.loads((entry / STAMP).read_text())
        name, date, origin = s["tree"], s["date"], s["origin"]
        plain = isinstance(name, str) and "/" not in name and name not in ("", ".", "..")
        if not plain or s["key"] != key or type(date) is not int or not isinstance(origin, str):
            return None
        tree = entry / name
        if tree.is_symlink() or not tree.is_dir():
            return None
        return SourceTree(tree, read_version(tree), key, date, origin)
    except (OSError, ValueError, KeyError, TypeError, UserError):
        return None


def _cached(entry: Path, key: str, build: Callable[[Path], None]) -> SourceTree:
    """The cache entry's tree, made by `build(stage)` when missing. An entry whose stamp
    is damaged is moved aside and rebuilt, under the entry's lock (nobody else is
    making or reading it as a new tree meanwhile)."""
    with cache.locked(f"src-{entry.name}"):
        if entry.exists():
            found = _load_stamp(entry, key)
            if found:
                return found
            aside = entry.with_name(f".{entry.name}.damaged-{os.getpid()}")
            os.replace(entry, aside)
            shutil.rmtree(aside, ignore_errors=True)
        with cache.staged_dir(entry) as stage:
            build(stage)
        tree = _load_stamp(entry, key)
    if tree is None:
        raise UserError(f"{entry}: the source just prepared has no valid {STAMP}; remove {entry} and try again")
    return tree


def _write_stamp(stage: Path, top: Path, key: str, date: int, origin: str) -> None:
    stamp = {"tree": top.name, "key": key, "date": date, "origin": origin}
    (stage / STAMP).write_text(json.dumps(stamp, indent=1) + "\n")


def _pristine(recipe: Recipe, key: str) -> SourceTree:
    kind = recipe.kernel.source_kind
    if kind == "dir":
        top = resolve_ref(recipe, recipe.kernel.source_ref)
        for dirt in (".config", "include/config"):
            if (top / dirt).exists():
                raise UserError(
                    f"{recipe.line_of('kernel', 'source')}: kernel.source: {top} is not clean ({dirt} exists); "
                    f"run `make mrproper` there (distkernel builds out of tree)"
                )
        return SourceTree(top, read_version(top), key, _source_date(top), recipe.kernel.source)

    def extract(stage: Path) -> None:
        tarball = _tarball(recipe)  # verified against the recipe's sha256 before extraction
        run(
            ["tar", "-xf", tarball, "-C", stage, "--no-same-owner", "--no-same-permissions"],
            what=f"extracting {tarball}",
        )
        top = _find_top(stage)
        _write_stamp(stage, top, key, _source_date(top), f"{recipe.kernel.source} ({tarball})")

    return _cached(cache.cache_dir("src") / key, key, extract)


def _apply(recipe: Recipe, patch: Path, tree: Path) -> None:
    done = call(["patch", "-p1", "--batch", "--forward", "--no-backup-if-mismatch", "-d", tree, "-i", patch], ok=None)
    if done.code == 0:
        return
    output = done.output.splitlines()
    current, failed = "?", ""
    rej_lines: list[str] = []
    for line in output:
        if m := re.match(r"^patching file (.+)$", line):
            current = m.group(1).strip("'")
        elif m := re.match(r"^Hunk #(\d+) FAILED at (\d+)", line):
            failed = f"hunk #{m.group(1)} of {current} FAILED at line {m.group(2)}"
            rej = tree / (current + ".rej")
            if rej.is_file() and not rej_lines:
                rej_lines = ["rejected hunk:", *rej.read_text(errors="replace").splitlines()[:25]]
    reason = failed or next(
        (x for x in output if "reversed" in x.lower() or "can't find" in x.lower()),
        output[-1] if output else "patch failed",
    )
    raise UserError(
        f"{recipe.line_of('kernel', 'patches')}: kernel.patches: {patch.name} does not apply: {reason}; "
        f"refresh the patch for this kernel version",
        details=rej_lines,
    )


def _link_copy(src: Path, dst: Path) -> None:
    """A hard-linked copy (patch replaces the files it changes, never writes through);
    a plain copy when `src` is on another filesystem."""
    try:
        run(["cp", "-al", src, dst], what="linking the source tree")
    except ToolError:
        shutil.rmtree(dst, ignore_errors=True)
        run(["cp", "-a", src, dst], what="copying the source tree")


def prepare_source(recipe: Recipe) -> SourceTree:
    """The source tree to build, extracted and patched, from the cache when present."""
    base = base_key(recipe)
    pristine = _pristine(recipe, base)
    if not recipe.kernel.patches:
        return pristine
    key = _patched_key(recipe, base)  # base_key once: a dir: source is a walk of the whole tree

    def patch(stage: Path) -> None:
        top = stage / pristine.path.name
        _link_copy(pristine.path, top)
        for p in recipe.kernel.patches:
            _apply(recipe, p, top)
        names = ", ".join(p.name for p in recipe.kernel.patches)
        _write_stamp(stage, top, key, pristine.date, f"{pristine.origin} + {names}")

    return _cached(cache.cache_dir("src") / key, key, patch)
