"""What metadata.json and manifest.json declare, checked together before a byte of the
payload is read: every path in the grammar, no entry below a symlink or a file, every
symlink resolved (through the package's other links) inside its own top folder, the
kernel files present, the sizes metadata declares equal to the manifest's and within
bounds. The stream then only has to match the manifest member by member."""

from __future__ import annotations

import posixpath
from collections import Counter

from distkernel.build.package.format import (
    FILE_MODES,
    IMAGE,
    KERNEL_DIR,
    KERNEL_FILES,
    MAX_PATH,
    METADATA,
    MODULES_DIR,
    Manifest,
    Metadata,
    member_problem,
)
from distkernel.build.package.schema import TEXT, SchemaError

MAX_MEMBERS = 500_000  # a distribution kernel with every module and headers has ~30k
MAX_LINKS = 10_000
MAX_PAYLOAD = 16 << 30  # bytes, all folders together
MIN_IMAGE = 4096  # smaller than any kernel's boot header and setup code
MAX_STEPS = 512  # path components walked while resolving one link (loops end here)


def resolve(path: str, links: dict[str, str]) -> list[str] | None:
    """The components of `path` with every package symlink in it followed, as the kernel
    would once the payload is placed; None when it climbs above the payload or loops."""
    todo = path.split("/")
    todo.reverse()
    out: list[str] = []
    steps = 0
    while todo:
        steps += 1
        if steps > MAX_STEPS:
            return None
        part = todo.pop()
        if part in ("", "."):
            continue
        if part == "..":
            if not out:
                return None
            out.pop()
            continue
        out.append(part)
        target = links.get("/".join(out))
        if target is not None:
            if target.startswith("/"):
                return None
            out.pop()
            todo.extend(reversed(target.split("/")))
    return out


def _utf8(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _link_problem(name: str, target: str, links: dict[str, str]) -> str | None:
    if not target or target[0] == "/" or len(target) > MAX_PATH or not TEXT.fullmatch(target) or not _utf8(target):
        return f"symlink target {target[:80]!r} is not a relative path"
    resolved = resolve(posixpath.join(posixpath.dirname(name), target), links)
    if not resolved or resolved[0] != name.split("/", 1)[0]:
        # install places kernel/, modules/ and headers/ in different folders of the root
        return f"symlink escapes its folder ({target[:80]})"
    return None


def _mode_problem(mode: int) -> str | None:
    if mode in FILE_MODES:
        return None
    if mode & 0o7000:
        return f"setuid/setgid/sticky mode {oct(mode)}"
    return f"mode {oct(mode)} is not 0644 or 0755"


def check_declared(meta: Metadata, manifest: Manifest) -> frozenset[str]:
    """Raise SchemaError at the first problem; the folders the entries imply (the only
    folder members a package may hold)."""
    files, links = manifest.files, manifest.links
    if len(files) + len(links) > MAX_MEMBERS or len(links) > MAX_LINKS:
        raise SchemaError(f"{len(files)} files and {len(links)} symlinks: more than a package may hold")
    for name, entry in files.items():
        if why := member_problem(name) or _mode_problem(entry.mode):
            raise SchemaError(f"{name}: {why}")
    for name in links:
        if why := member_problem(name):
            raise SchemaError(f"{name}: {why}")
        if name in files or name.startswith(KERNEL_DIR + "/"):
            raise SchemaError(f"{name}: a symlink where a file belongs")
    dirs: set[str] = set()
    for name in (*files, *links):
        cut = name.rfind("/")
        while cut > 0:
            parent = name[:cut]
            if parent in dirs:
                break  # and so are its own parents
            if parent in links:
                raise SchemaError(f"{name}: lies below the symlink {parent}")
            if parent in files:
                raise SchemaError(f"{name}: lies below the file {parent}")
            dirs.add(parent)
            cut = name.rfind("/", 0, cut)
    for name, target in links.items():
        if why := _link_problem(name, target, links):
            raise SchemaError(f"{name}: {why}")
    for name in KERNEL_FILES:
        if name not in files:
            raise SchemaError(f"{name}: missing from the manifest (every package carries {', '.join(KERNEL_FILES)})")
    if files[IMAGE].size < MIN_IMAGE:
        raise SchemaError(f"{IMAGE}: {files[IMAGE].size} bytes is no kernel image")
    _check_sizes(meta, manifest)
    return frozenset(dirs)


def _check_sizes(meta: Metadata, manifest: Manifest) -> None:
    sizes: Counter[str] = Counter()
    for name, entry in manifest.files.items():
        sizes[name.split("/", 1)[0]] += entry.size
    declared = {"files": len(manifest.files), **sizes}
    if meta.sizes != declared:
        raise SchemaError(f"{METADATA} sizes {meta.sizes} differ from the manifest's {declared}")
    if sum(sizes.values()) > MAX_PAYLOAD:
        raise SchemaError(f"payload of {sum(sizes.values())} bytes: more than a package may hold ({MAX_PAYLOAD})")
    modules = sorted(
        posixpath.basename(n)[:-3] for n in manifest.files if n.startswith(MODULES_DIR + "/") and n.endswith(".ko")
    )
    if meta.modules != modules:
        raise SchemaError(f"{METADATA} modules differ from the .ko files in the manifest")
