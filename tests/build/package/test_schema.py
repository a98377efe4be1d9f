"""The package grammars, link resolution and image identification, in process (the
real package's hostile variants are in test_hostile_packages.py)."""

from __future__ import annotations

import pytest

from distkernel.build.package.declared import resolve
from distkernel.build.package.format import member_problem, name_problem, release_problem
from distkernel.build.package.image import ImageCheck
from distkernel.build.package.schema import SchemaError
from tests.build.package.images import fake_arm64_image, fake_bzimage, fake_elf, fake_image
from tests.build.package.test_format import metadata


@pytest.mark.parametrize("release", ["6.1.192-distkernel", "6.12.0-rc3+", "5.10.0_1.x"])
def test_kernel_releases_are_accepted(release: str) -> None:
    assert release_problem(release) is None


@pytest.mark.parametrize(
    "release", ["", "x6.1", "6.1/x", "6.1..x", "6.1 x", "6.1\nx", "6.1\tx", "6.1\x7f", "6" * 65, "6.1-é"]
)
def test_releases_with_slashes_dots_spaces_or_control_characters_are_refused(release: str) -> None:
    assert release_problem(release) is not None


@pytest.mark.parametrize("name", ["", ".hidden", "a/b", "a..b", "a b", "a\nb", "a+b", "n" * 65])
def test_package_names_are_plain(name: str) -> None:
    assert name_problem(name) is not None


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("/etc/passwd", "absolute"),
        ("modules/../x", "not normalized"),
        ("modules//x", "not normalized"),
        ("modules/./x", "not normalized"),
        ("modules/x/", "not normalized"),
        ("modules/a\nb", "control character"),
        ("etc/x", "not inside"),
        ("modules", "not inside"),
        ("modules/" + "x" * 256, "NAME_MAX"),
        ("modules/\udc80", "not UTF-8"),
    ],
)
def test_member_paths(path: str, why: str) -> None:
    assert why in (member_problem(path) or "")


def test_links_are_resolved_through_other_links() -> None:
    links = {"headers/a": ".", "headers/b": "a/..", "headers/c": "a/include", "headers/l": "l"}
    assert resolve("headers/a", links) == ["headers"]
    assert resolve("headers/b", links) == []  # above the payload: a/.. is headers/.., not headers
    assert resolve("headers/c/x", links) == ["headers", "include", "x"]
    assert resolve("headers/l", links) is None  # a loop


@pytest.mark.parametrize(
    ("arch", "image"),
    [
        ("x86_64", fake_bzimage("6.1.7-t")),
        ("arm64", fake_arm64_image("6.1.7-t")),
        ("ppc64le", fake_elf(21, "6.1.7-t")),
    ],
)
def test_each_arch_knows_its_image(arch: str, image: bytes) -> None:
    check = ImageCheck()
    for at in range(0, len(image), 1000):  # the banner is found across chunk boundaries
        check.feed(image[at : at + 1000])
    info = check.finish(metadata(arch=arch))
    assert (info.arch, info.release) == (arch, "6.1.7-t")


@pytest.mark.parametrize(
    ("arch", "image", "why"),
    [
        ("arm64", fake_image("x86_64", "6.1.7-t"), "is an x86 bzImage for x86_64, but metadata.json says arch arm64"),
        ("x86_64", fake_elf(62, "6.1.7-t"), "is an ELF vmlinux for x86_64"),
        ("x86_64", fake_bzimage("6.1.8-other"), "the kernel is release '6.1.8-other'"),
        ("x86_64", bytes(8192), "not a kernel image"),
        ("x86_64", fake_bzimage("6.1.7-t")[:4096], "a bzImage cut short"),
    ],
)
def test_images_that_are_not_the_metadatas_kernel(arch: str, image: bytes, why: str) -> None:
    check = ImageCheck()
    check.feed(image)
    with pytest.raises(SchemaError, match=why.replace("(", r"\(").replace(")", r"\)")):
        check.finish(metadata(arch=arch))
