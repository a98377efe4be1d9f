"""An install of what a binhost client fetched takes the fetch's judgement of the package
(its parsed manifest), and refuses, with the root untouched, a file that is no longer
the one judged and a headers part that is not the kernel part's."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from distkernel.build.package.format import HEADERS_PART, KERNEL_PART
from distkernel.build.package.reader import VerifiedPackage, read_head
from distkernel.core.errors import UserError
from distkernel.target.install import FromBinhost, install_package, load_state
from distkernel.target.install.state import Origin
from distkernel.workflows.repo.parts import split_package
from tests.build.package.images import fake_image
from tests.hostile import snapshot
from tests.target.install.helpers import fake_package, make_root

RELEASE = "6.1.0-fake"


def _parts(out: Path, tag: bytes = b"") -> tuple[Path, Path]:
    """The kernel and headers parts of a fake package; TAG makes another manifest."""
    pkg = fake_package(out, RELEASE, image=fake_image("x86_64", RELEASE, tag))
    kernel, headers = out / "kernel.tar.zst", out / "headers.tar.zst"
    split_package(pkg, kernel, headers)
    return kernel, headers


def _fetched(judged: VerifiedPackage, headers: Path | None = None) -> FromBinhost:
    origin = Origin(("http://127.0.0.1:1/",), judged.manifest_sha256, "", 0, "")
    return FromBinhost(KERNEL_PART, headers, origin, judged)


def test_an_install_of_the_fetched_parts_takes_the_fetchs_judgement(tmp_path: Path) -> None:
    kernel, headers = _parts(tmp_path / "a")
    judged = read_head(kernel, KERNEL_PART)
    root = make_root(tmp_path / "root")
    install_package(kernel, root, layout="plain", initramfs="none", fetched=_fetched(judged, headers))
    k = load_state(root).kernels[RELEASE]
    assert k.headers and (root / f"usr/src/linux-headers-{RELEASE}/include/linux/fake.h").is_file()


def test_a_file_changed_since_the_fetch_is_refused(tmp_path: Path) -> None:
    kernel, _ = _parts(tmp_path / "a")
    judged = read_head(kernel, KERNEL_PART)
    other, _ = _parts(tmp_path / "b", tag=b"another")
    shutil.copyfile(other, kernel)  # replaced between the fetch and the install
    root = make_root(tmp_path / "root")
    before = snapshot(root)
    with pytest.raises(UserError, match="changed since it was fetched"):
        install_package(kernel, root, layout="plain", initramfs="none", fetched=_fetched(judged))
    assert snapshot(root) == before


def test_a_headers_part_of_another_package_is_refused(tmp_path: Path) -> None:
    kernel, _ = _parts(tmp_path / "a")
    _, foreign = _parts(tmp_path / "b", tag=b"another")
    root = make_root(tmp_path / "root")
    before = snapshot(root)
    with pytest.raises(UserError, match="not the headers part of"):
        install_package(
            kernel, root, layout="plain", initramfs="none", fetched=_fetched(read_head(kernel, KERNEL_PART), foreign)
        )
    assert snapshot(root) == before
    assert read_head(foreign, HEADERS_PART).manifest_sha256 != read_head(kernel, KERNEL_PART).manifest_sha256
