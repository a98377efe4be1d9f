"""Debian packages from one distkernel package: linux-image-RELEASE and
linux-headers-RELEASE, laid out and scripted as Debian's own kernel packages are
(workflows/data/export.toml holds the layout knowledge and the maintainer scripts), built
by `dpkg-deb` with SOURCE_DATE_EPOCH the package's build date, so the same package
exports to the same bytes. The two .debs are built side by side: the image's dpkg-deb
compresses while the headers are tidied and summed."""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from distkernel import __version__
from distkernel.build.package.format import KERNEL_FILES, Metadata
from distkernel.core import tools
from distkernel.core.cache import cache_dir
from distkernel.core.errors import UserError
from distkernel.workflows.export.stage import Exported, enabled, head, layout, normalize, publish, stage, workspace

# Debian policy 5.6.1 and 5.6.12: package names and upstream versions.
DEB_NAME = re.compile(r"[a-z0-9][a-z0-9.+-]+")
DEB_UPSTREAM = re.compile(r"[0-9][A-Za-z0-9.+~-]*")


def deb_names(m: Metadata) -> tuple[str, str, str, str]:
    """(image package, headers package, version, Debian arch) for a package's metadata,
    or a UserError saying why Debian cannot name it."""
    conf = layout()["deb"]
    arch = conf["arches"].get(m.arch)
    if arch is None:
        raise UserError(f"--format deb: no Debian architecture for {m.arch!r} (known: {', '.join(conf['arches'])})")
    release = m.kernel_release
    if not DEB_NAME.fullmatch(f"linux-image-{release}") or not DEB_UPSTREAM.fullmatch(release):
        raise UserError(
            f"--format deb: kernel release {release!r} cannot name a Debian package "
            "(lower-case letters, digits, . + - only); set the recipe's localversion to such a name"
        )
    return f"linux-image-{release}", f"linux-headers-{release}", f"{release}-{conf['revision']}", arch


def _scan(tree: Path) -> tuple[str, int]:
    """DEBIAN/md5sums (every regular file, by path) and Installed-Size in KiB, counted as
    dpkg-gencontrol does (each file rounded up to a KiB, one per folder and symlink), in
    one pass over TREE before its DEBIAN folder exists."""
    sums: list[tuple[str, str]] = []
    size = 0
    folders = [""]
    while folders:
        folder = folders.pop()
        size += 1
        with os.scandir(os.path.join(tree, folder)) as entries:
            for entry in entries:
                rel = folder + entry.name
                if entry.is_symlink():
                    size += 1
                elif entry.is_dir():
                    folders.append(rel + "/")
                else:
                    size += (entry.stat().st_size + 1023) // 1024
                    with open(entry.path, "rb") as f:
                        sums.append((rel, hashlib.file_digest(f, "md5").hexdigest()))
    return "".join(f"{digest}  {rel}\n" for rel, digest in sorted(sums)), size


def _docs(tree: Path, name: str, version: str, m: Metadata, conf: dict[str, Any]) -> None:
    doc = tree / "usr/share/doc" / name
    doc.mkdir(parents=True)
    year = time.gmtime(m.build_date).tm_year
    (doc / "copyright").write_text(conf["copyright"].lstrip("\n").format(year=year))
    date = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(m.build_date))
    changelog = (
        f"{name} ({version}) unstable; urgency=medium\n\n"
        f"  * Exported by distkernel {__version__}\n    from {m.filename}.\n\n"
        f" -- {conf['maintainer']}  {date}\n"
    )
    # mtime=0 and no file name: gzip -n, so the bytes depend on the text alone.
    (doc / "changelog.Debian.gz").write_bytes(gzip.compress(changelog.encode(), 9, mtime=0))


def _control(tree: Path, fields: dict[str, str], scripts: dict[str, str], values: dict[str, str]) -> None:
    sums, installed = _scan(tree)
    debian = tree / "DEBIAN"
    debian.mkdir()
    (debian / "md5sums").write_text(sums)
    fields["Installed-Size"] = str(installed)
    order = ("Package", "Version", "Architecture", "Maintainer", "Installed-Size", "Depends", "Recommends")
    keys = [k for k in order if k in fields] + [k for k in fields if k not in order]
    (debian / "control").write_text("".join(f"{k}: {fields[k]}\n" for k in keys if fields[k]))
    for script, text in scripts.items():
        path = debian / script
        path.write_text(text.lstrip("\n").format(**values))
        path.chmod(0o755)


def _tidy_headers(tree: Path, conf: dict[str, Any]) -> None:
    """As Debian's linux-headers and linux-kbuild packages ship them: without VCS files,
    the host tools (fixdep, modpost, objtool) stripped, by one `strip` for all of them."""
    drop = set(conf["headers_drop"])
    elves = []
    for top, _, files in os.walk(tree):
        for name in files:
            path = os.path.join(top, name)
            if name in drop:
                os.unlink(path)
            elif not os.path.islink(path) and os.stat(path).st_mode & 0o100:
                with open(path, "rb") as f:
                    if f.read(4) == b"\x7fELF":
                        elves.append(path)
    if elves:
        tools.call(["strip", "--strip-unneeded", *sorted(elves)], what="strip (the headers' host tools)")


def _build(tree: Path, target: Path, epoch: int, compress: dict[str, Any], log: Path) -> None:
    normalize(tree, epoch)
    env = dict(os.environ, SOURCE_DATE_EPOCH=str(epoch))
    # The compressor is named, not left to dpkg-deb's defaults, which DPKG_DEB_* variables
    # of the caller's environment change; the thread count changes no byte.
    argv = ["dpkg-deb", "--root-owner-group", f"-Z{compress['type']}", f"-z{compress['level']}", "--build"]
    tools.run([*argv, tree, target], log=log, env=env, what="dpkg-deb")


def export_deb(package: Path, out: Path) -> list[Exported]:
    """linux-image-RELEASE_VERSION_ARCH.deb and linux-headers-... into OUT."""
    conf = layout()["deb"]
    image_name, headers_name, version, arch = deb_names(head(package))
    with workspace(out) as work:
        image, headers = work / "image", work / "headers"
        release = image_name.removeprefix("linux-image-")
        staged = stage(package, work, image / "lib/modules" / release, headers / f"usr/src/linux-headers-{release}")
        m = staged.metadata
        boot = image / "boot"
        boot.mkdir()
        for member in KERNEL_FILES:
            name = Path(member).name
            os.replace(staged.kernel / name, boot / f"{name}-{release}")
        (headers / "lib/modules" / release).mkdir(parents=True)
        (headers / "lib/modules" / release / "build").symlink_to(f"/usr/src/linux-headers-{release}")
        values = {
            "release": release,
            "image_path": f"/boot/vmlinuz-{release}",
            "initrd": "Yes" if enabled(staged.config, "CONFIG_BLK_DEV_INITRD") else "No",
            "depmod_outputs": " ".join(conf["depmod_outputs"]),
        }
        common = {"Version": version, "Architecture": arch, "Maintainer": conf["maintainer"]}
        common |= {"Section": conf["section"], "Priority": conf["priority"]}
        source = f"{m.name}{'+' + m.variant if m.variant else ''} {m.version}"
        image_fields = {
            "Package": image_name,
            **common,
            "Depends": conf["image_depends"],
            "Recommends": conf["image_recommends"],
            "Description": f"Linux kernel, version {release}\n The Linux kernel, its modules and System.map,"
            f"\n exported by distkernel from {source}.",
        }
        headers_fields = {
            "Package": headers_name,
            **common,
            "Depends": conf["headers_depends"],
            "Recommends": conf["headers_recommends"],
            "Description": f"Linux kernel headers for {release}\n Header files and build tools for building"
            f"\n external kernel modules (dkms) for Linux {release},"
            f"\n exported by distkernel from {source}.",
        }
        logs = cache_dir("logs")

        def build_one(kind: str, tree: Path, name: str, fields: dict[str, str]) -> tuple[Path, Exported]:
            if kind == "headers":
                _tidy_headers(tree / f"usr/src/linux-headers-{release}", conf)
            _docs(tree, name, version, m, conf)
            _control(tree, fields, conf[f"{kind}_scripts"], values)
            file = f"{name}_{version}_{arch}.deb"
            _build(tree, work / file, m.build_date, conf["compress"][kind], logs / f"export-dpkg-deb-{kind}.log")
            return work / file, Exported(out / file, name, version, (work / file).stat().st_size)

        # Side by side: dpkg-deb runs outside the interpreter, so the image's compresses
        # while the headers are tidied and summed, and both compressors share the CPUs.
        with ThreadPoolExecutor(max_workers=2) as pool:
            jobs = [
                pool.submit(build_one, "image", image, image_name, image_fields),
                pool.submit(build_one, "headers", headers, headers_name, headers_fields),
            ]
        return publish([job.result() for job in jobs])
