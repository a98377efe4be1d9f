"""A Gentoo binary package (GLEP 78 gpkg-1) from one distkernel package.

The container is an uncompressed tar whose members all lie in one folder named
PF-BUILD_ID: the empty `gpkg-1` marker first, then `metadata.tar.zst` (the files Portage
reads from a binary package, below `metadata/`), `image.tar.zst` (the files to merge,
below `image/`: /boot, /lib/modules/RELEASE and the headers in /usr/src/linux-RELEASE)
and last the `Manifest`: one `DATA name size BLAKE2B hex SHA512 hex` line per member
(Portage checks every hash it knows). With binpkg-multi-instance, Portage keeps several
builds of one version apart by BUILD_ID (the file is CATEGORY/PN/PF-BUILD_ID.gpkg.tar);
SLOT is the kernel release, so variants, whose releases differ, install side by side.
Every member's time is the package's build date: the same package exports to the same
bytes."""

from __future__ import annotations

import hashlib
import io
import os
import re
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, cast

import zstandard

from distkernel.build.package.format import KERNEL_FILES, Metadata
from distkernel.core.errors import UserError
from distkernel.workflows.export.stage import Exported, head, layout, normalize, publish, stage, workspace

# Package Manager Specification 3.1.2 (package names) and 3.2 (versions).
PN_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9+_-]*")
PV_RE = re.compile(r"[0-9]+(\.[0-9]+)*[a-z]?((_alpha|_beta|_pre|_rc|_p)[0-9]*)*(-r[0-9]+)?")
COMPRESSION = ".zst"
LEVEL = 15


def gpkg_names(m: Metadata, build_id: int) -> tuple[str, str, str]:
    """(CATEGORY, PN, PF) for a package's metadata, or a UserError saying why Portage
    cannot name it."""
    conf = layout()["gpkg"]
    if m.arch not in conf["chosts"]:
        raise UserError(f"--format gpkg: no Gentoo CHOST for {m.arch!r} (known: {', '.join(conf['chosts'])})")
    if build_id < 1:
        raise UserError(f"--build-id {build_id}: a build id is a positive number")
    pn = conf["prefix"] + m.name
    if not PN_RE.fullmatch(pn) or re.search(r"-[0-9]+(\.[0-9]+)*[a-z]?$", pn):
        raise UserError(f"--format gpkg: {m.name!r} cannot name a Gentoo package (no trailing -VERSION)")
    if not PV_RE.fullmatch(m.version):
        raise UserError(f"--format gpkg: version {m.version!r} is not a Gentoo version (such as 6.1.7)")
    return conf["category"], pn, f"{pn}-{m.version}"


def _info(name: str, epoch: int, size: int = 0, kind: bytes = tarfile.REGTYPE, mode: int = 0o644) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.type, info.mode = size, epoch, kind, mode
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def _walk(tree: Path) -> Iterator[Path]:
    """Every path below TREE, folders before what they hold, in byte order."""
    for top, dirs, files in os.walk(tree):
        dirs.sort()
        for name in sorted(dirs + files):
            yield Path(top, name)


class _Hashing(io.RawIOBase):
    """A file that hashes what is written to it (the Manifest's hashes and size)."""

    def __init__(self, out: BinaryIO) -> None:
        self.out, self.size = out, 0
        self.blake2b, self.sha512 = hashlib.blake2b(), hashlib.sha512()

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.out.write(data)
        self.blake2b.update(data)
        self.sha512.update(data)
        self.size += len(data)
        return len(data)

    def line(self, name: str) -> str:
        return f"DATA {name} {self.size} BLAKE2B {self.blake2b.hexdigest()} SHA512 {self.sha512.hexdigest()}\n"


def _inner(path: Path, members: Iterator[tuple[tarfile.TarInfo, BinaryIO | None]]) -> str:
    """Write a zstd-compressed tar of MEMBERS to PATH; return its Manifest line."""
    with open(path, "wb") as raw:
        hashing = _Hashing(raw)
        cctx = zstandard.ZstdCompressor(level=LEVEL)
        with (
            cctx.stream_writer(cast(BinaryIO, hashing), closefd=False) as z,
            tarfile.open(fileobj=z, mode="w|", format=tarfile.GNU_FORMAT) as tar,
        ):
            for info, data in members:
                tar.addfile(info, data)
                if data is not None:
                    data.close()
    return hashing.line(path.name)


def _tree_members(tree: Path, epoch: int) -> Iterator[tuple[tarfile.TarInfo, BinaryIO | None]]:
    """image/ and every path below TREE (the metadata tar holds regular files alone:
    Portage refuses anything else there)."""
    yield _info("image", epoch, kind=tarfile.DIRTYPE, mode=0o755), None
    for path in _walk(tree):
        name = f"image/{path.relative_to(tree)}"
        if path.is_symlink():
            info = _info(name, epoch, kind=tarfile.SYMTYPE, mode=0o777)
            info.linkname = os.readlink(path)
            yield info, None
        elif path.is_dir():
            yield _info(name, epoch, kind=tarfile.DIRTYPE, mode=0o755), None
        else:
            mode = 0o755 if path.stat().st_mode & 0o100 else 0o644
            yield _info(name, epoch, path.stat().st_size, mode=mode), open(path, "rb")  # noqa: SIM115 - closed by _inner


def _metadata(m: Metadata, category: str, pf: str, build_id: int, size: int) -> dict[str, str]:
    conf = layout()["gpkg"]
    release = m.kernel_release
    description = f"Linux {release} exported by distkernel from {m.filename}"
    ebuild = (
        f'EAPI={conf["eapi"]}\nDESCRIPTION="{description}"\nHOMEPAGE="{conf["homepage"]}"\n'
        f'LICENSE="{conf["license"]}"\nSLOT="{release}"\nKEYWORDS="{conf["keywords"][m.arch]}"\n'
        'RESTRICT="strip binchecks"\n'
    )
    fields = {
        "BUILD_ID": str(build_id),
        "BUILD_TIME": str(m.build_date),
        "CATEGORY": category,
        "CBUILD": conf["chosts"][m.arch],
        "CHOST": conf["chosts"][m.arch],
        "DEFINED_PHASES": "",
        "DESCRIPTION": description,
        "EAPI": conf["eapi"],
        "HOMEPAGE": conf["homepage"],
        "IUSE": "",
        "KEYWORDS": conf["keywords"][m.arch],
        "LICENSE": conf["license"],
        "PF": pf,
        "RESTRICT": "strip binchecks",
        "SIZE": str(size),
        "SLOT": release,
        "USE": "",
        "repository": "distkernel",
    }
    return {k: v + "\n" for k, v in fields.items()} | {f"{pf}.ebuild": ebuild}


def export_gpkg(package: Path, out: Path, build_id: int = 1) -> list[Exported]:
    """OUT/CATEGORY/PN/PF-BUILD_ID.gpkg.tar (OUT can be Portage's PKGDIR)."""
    category, pn, pf = gpkg_names(head(package), build_id)
    with workspace(out) as work:
        image = work / "image"
        release = head(package).kernel_release
        staged = stage(package, work, image / "lib/modules" / release, image / f"usr/src/linux-{release}")
        m = staged.metadata
        (image / "boot").mkdir()
        for member in KERNEL_FILES:
            name = Path(member).name
            os.replace(staged.kernel / name, image / "boot" / f"{name}-{release}")
        (image / "lib/modules" / release / "build").symlink_to(f"/usr/src/linux-{release}")
        normalize(image, m.build_date)
        size = sum(p.lstat().st_size for p in _walk(image) if p.is_file() and not p.is_symlink())
        epoch, basename = m.build_date, f"{pf}-{build_id}"
        meta = _metadata(m, category, pf, build_id, size)
        meta_lines = _inner(
            work / f"metadata.tar{COMPRESSION}",
            ((_info(f"metadata/{k}", epoch, len(v.encode())), io.BytesIO(v.encode())) for k, v in sorted(meta.items())),
        )
        image_line = _inner(work / f"image.tar{COMPRESSION}", _tree_members(image, epoch))
        empty = _Hashing(io.BytesIO())
        manifest = (empty.line("gpkg-1") + meta_lines + image_line).encode()
        file = work / f"{basename}.gpkg.tar"
        with tarfile.open(file, "w", format=tarfile.GNU_FORMAT) as tar:
            tar.addfile(_info(f"{basename}/gpkg-1", epoch))
            for inner in (f"metadata.tar{COMPRESSION}", f"image.tar{COMPRESSION}"):
                path = work / inner
                with open(path, "rb") as f:
                    tar.addfile(_info(f"{basename}/{inner}", epoch, path.stat().st_size), f)
            tar.addfile(_info(f"{basename}/Manifest", epoch, len(manifest)), io.BytesIO(manifest))
        final = out / category / pn / file.name
        final.parent.mkdir(parents=True, exist_ok=True)
        return publish([(file, Exported(final, f"{category}/{pn}", f"{m.version}-{build_id}", file.stat().st_size))])
