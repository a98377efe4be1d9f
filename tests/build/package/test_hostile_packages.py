"""Hostile packages made by hand from the real default package. Each is refused by
`verify`, `inspect` and `install` alike (into a fresh root and into a root already
holding the kernel): the same single line, exit 2, no traceback, memory bounded, and
both roots byte-for-byte unchanged."""

from __future__ import annotations

import hashlib
import os
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import pytest
import zstandard

from distkernel.build.package.format import IMAGE
from distkernel.build.package.reader import check_package
from distkernel.build.trust.keys import PACKAGE_KEY, KeySet
from tests.build.package.hostile import Entry, Hostile, Zeros
from tests.conftest import Built, Run, assert_user_facing_error, cli
from tests.hostile import Snapshot, run_cli, snapshot
from tests.target.install.helpers import make_root

pytestmark = pytest.mark.kernel

MAX_RSS = 300 << 20
Maker = Callable[[Hostile, Path], Path]


def cli_measured(*args: str | os.PathLike[str]) -> tuple[Run, int]:
    """The CLI in a subprocess (under tests/hostile.py's memory limit), and the most
    memory it held (bytes)."""
    o = run_cli(*args)
    return Run(o.code, o.out, o.err), int(o.max_rss_mb * (1 << 20))


def metadata(**changes: object) -> Maker:
    def make(h: Hostile, out: Path) -> Path:
        h.metadata.update(changes)
        return h.write(out)

    return make


def edited(edit: Callable[[Hostile], object], **write: object) -> Maker:
    def make(h: Hostile, out: Path) -> Path:
        edit(h)
        return h.write(out, **write)  # type: ignore[arg-type]

    return make


def appended(tail: Callable[[], bytes]) -> Maker:
    def make(h: Hostile, out: Path) -> Path:
        h.write(out)
        with open(out, "ab") as f:
            f.write(tail())
        return out

    return make


def truncated(h: Hostile, out: Path) -> Path:
    h.write(out)
    os.truncate(out, out.stat().st_size - 1)
    return out


def metadata_second(h: Hostile, out: Path) -> Path:
    entries = h.entries()
    return h.write(out, entries=[entries[1], entries[0], *entries[2:]])


def junk_image(h: Hostile) -> None:
    h.replace_file(IMAGE, b"".join(hashlib.sha256(bytes([i])).digest() for i in range(256)) * 8)


def through_link(h: Hostile) -> None:
    h.add_link("headers/through", "include/linux")
    h.add_file("headers/through/evil.h", b"#define EVIL 1\n")


def unlisted_link_then_member(h: Hostile) -> None:
    h.add_link("kernel/boot", "../../../boot", listed=False)
    h.add_file("kernel/boot/vmlinuz", b"x", listed=False)


def long_name(fmt: Literal[0, 1, 2]) -> Callable[[Hostile], None]:
    def edit(h: Hostile) -> None:
        h.add_file("modules/kernel/" + "d" * 60 + "/" + "f" * 60 + ".bin", b"long\n").format = fmt

    return edit


def bad_checksum(h: Hostile) -> None:
    h.member("kernel/config").bad_checksum = True


def duplicate(h: Hostile) -> None:
    h.payload.append(h.member("kernel/config"))


def misplaced_signature(h: Hostile) -> None:
    info = tarfile.TarInfo("manifest.sig")
    info.size = 3
    h.payload.append(Entry(info, b"sig"))


def archive_after_the_end(h: Hostile, out: Path) -> Path:
    info = tarfile.TarInfo("modules/late.ko")
    info.size = 4
    return h.write(out, after=(Entry(info, b"late"),))


CASES: dict[str, tuple[Maker, str]] = {
    "release with ../": (metadata(kernel_release="6.1.192-x/../../../../ESCAPED"), "kernel_release:"),
    "release with a newline": (metadata(kernel_release="6.1.192-distkernel\noptions init=X"), "kernel_release:"),
    "release other than the kernel's": (metadata(kernel_release="6.1.192-other"), "the kernel is release"),
    "arm64 metadata on an x86_64 kernel": (metadata(arch="arm64"), "but metadata.json says arch arm64"),
    "unknown arch": (metadata(arch="sparc64"), "arch: 'sparc64' is not one of"),
    "name with a slash": (metadata(name="../../evil"), "name: '../../evil' is not a plain name"),
    "unknown metadata key": (metadata(evil=1), "unknown key 'evil'"),
    "metadata field of the wrong type": (metadata(build_date="yesterday"), "build_date: must be"),
    "zero-byte vmlinuz": (edited(lambda h: h.replace_file(IMAGE, b"")), "0 bytes is no kernel image"),
    "vmlinuz that is no kernel": (edited(junk_image), "not a kernel image"),
    "symlink out of its tree": (
        edited(lambda h: h.add_link("modules/escape", "../../../../etc")),
        "symlink escapes its folder",
    ),
    "symlink out through another symlink": (
        edited(lambda h: (h.add_link("headers/a", "."), h.add_link("headers/b", "a/.."))),
        "headers/b: symlink escapes its folder",
    ),
    "member written through a package symlink": (edited(through_link), "lies below the symlink headers/through"),
    "unlisted symlink, then a member through it": (edited(unlisted_link_then_member), "symlink not in the manifest"),
    "3 GiB of zeros not in the manifest": (
        edited(lambda h: h.add_file("modules/zeros.bin", Zeros(3 << 30), listed=False)),
        "modules/zeros.bin: not in the manifest",
    ),
    "truncated by one byte": (truncated, "truncated"),
    "gzip named .tar.zst": (edited(lambda h: None, compress="gzip"), "a gzip stream, not zstd"),
    "PAX long name": (edited(long_name(tarfile.PAX_FORMAT)), "a POSIX ustar or PAX header"),
    "ustar prefix": (edited(long_name(tarfile.USTAR_FORMAT)), "a POSIX ustar or PAX header"),
    "bad header checksum": (edited(bad_checksum), "a tar header with a bad checksum"),
    "hard link": (edited(lambda h: h.add_special("modules/hard", tarfile.LNKTYPE, IMAGE)), "a hard link"),
    "device node": (edited(lambda h: h.add_special("modules/null", tarfile.CHRTYPE)), "a character device"),
    "fifo": (edited(lambda h: h.add_special("modules/fifo", tarfile.FIFOTYPE)), "a FIFO"),
    "member twice": (edited(duplicate), "kernel/config: appears twice"),
    "signature among the payload": (edited(misplaced_signature), "misplaced control member"),
    "manifest before metadata": (metadata_second, "must come first"),
    "garbage after the zstd frame": (appended(lambda: b"garbage"), "data after the end of the zstd frame"),
    "second zstd frame": (appended(lambda: zstandard.ZstdCompressor().compress(b"x")), "after the end of the zstd"),
    "second archive after the end marker": (archive_after_the_end, "data after the end of the archive"),
}


@pytest.fixture(scope="module")
def real(default_package: Built) -> Hostile:
    return Hostile.of(default_package.package)


@pytest.fixture(scope="module")
def used_root(default_package: Built, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Snapshot]:
    """A root that already holds the kernel (its lock and state exist), and its snapshot."""
    root = make_root(tmp_path_factory.mktemp("used") / "root")
    run = cli("install", default_package.package, "--root", root, "--initramfs", "none")
    assert run.code == 0, run.err
    return root, snapshot(root)


def test_the_hand_made_package_itself_is_accepted(real: Hostile, tmp_path: Path) -> None:
    """The control for every case below: unedited, the builder's output is a good package."""
    checked = check_package(real.copy().write(tmp_path / "same.tar.zst"))
    assert checked.image is not None and checked.image.release == "6.1.192-distkernel"


# Damage after the last member of the file, past the headers part: an install that places
# no headers tree stops reading where the headers begin and never sees it (what it places
# is judged whole); every command that reads the file to its end refuses it alike.
PAST_THE_END = {
    "truncated by one byte",
    "garbage after the zstd frame",
    "second zstd frame",
    "second archive after the end marker",
}


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_package_is_refused_alike(
    case: str, real: Hostile, used_root: tuple[Path, Snapshot], tmp_path: Path
) -> None:
    make, needle = CASES[case]
    bad = make(real.copy(), tmp_path / "bad.tar.zst")
    fresh = make_root(tmp_path / "root")
    used, used_before = used_root
    fresh_before = snapshot(fresh)
    install = ["--initramfs", "none", *(["--with-headers"] if case in PAST_THE_END else [])]
    runs = {
        "verify": cli_measured("verify", bad),
        "inspect": cli_measured("inspect", bad),
        "install into a fresh root": cli_measured("install", bad, "--root", fresh, *install),
        "install into a used root": cli_measured("install", bad, "--root", used, *install),
    }
    lines = set()
    for what, (run, rss) in runs.items():
        assert_user_facing_error(run, 2, needle)
        assert rss < MAX_RSS, (what, rss)
        lines.add(run.err.splitlines()[0])
    assert len(lines) == 1, lines
    assert snapshot(fresh) == fresh_before
    assert snapshot(used) == used_before
    assert not any("ESCAPED" in p.name for p in tmp_path.parent.rglob("*"))


@pytest.mark.parametrize("case", sorted(PAST_THE_END))
def test_damage_past_the_end_is_not_read_by_an_install_without_headers(
    case: str, real: Hostile, tmp_path: Path
) -> None:
    """It places what a good file places (the kernel part, judged whole), nothing else."""
    bad = CASES[case][0](real.copy(), tmp_path / "bad.tar.zst")
    good = real.copy().write(tmp_path / "good.tar.zst")
    roots = [make_root(tmp_path / name) for name in ("bad", "good")]
    for pkg, root in zip((bad, good), roots, strict=True):
        run = cli("install", pkg, "--root", root, "--initramfs", "none", "--json")
        assert run.code == 0, run.err
    ours, theirs = (snapshot(r) for r in roots)
    assert ours.keys() == theirs.keys()
    assert not (roots[0] / "usr/src/linux-headers-6.1.192-distkernel/include").exists()


@pytest.mark.parametrize(
    "case", ["release with ../", "arm64 metadata on an x86_64 kernel", "truncated by one byte", "member twice"]
)
def test_repo_add_and_test_refuse_alike(case: str, real: Hostile, tmp_path: Path, keys: KeySet) -> None:
    make, needle = CASES[case]
    bad = make(real.copy(), tmp_path / "bad.tar.zst")
    repo = tmp_path / "repo"
    assert cli("repo", "init", repo, "--key", keys.path(PACKAGE_KEY)).code == 0
    before = snapshot(repo)
    verify, add, boot = cli("verify", bad), cli("repo", "add", repo, bad), cli("test", bad)
    for run in (verify, add, boot):
        assert_user_facing_error(run, 2, needle)
    assert verify.err.splitlines()[0] == add.err.splitlines()[0] == boot.err.splitlines()[0]
    assert snapshot(repo) == before


def test_gnu_long_names_are_read_and_installed(real: Hostile, tmp_path: Path) -> None:
    """Names over 100 bytes, as the writer stores them (GNU long-name records)."""
    h = real.copy()
    name = "include/" + "d" * 60 + "/" + "f" * 60 + ".h"
    h.add_file(f"headers/{name}", b"#define LONG 1\n")
    pkg = h.write(tmp_path / "long.tar.zst")
    assert cli("verify", pkg).code == 0
    root = make_root(tmp_path / "root")
    run = cli("install", pkg, "--root", root, "--initramfs", "none", "--with-headers", "--json")
    assert run.code == 0, run.err
    assert (Path(run.json()["headers_dir"]) / name).read_bytes() == b"#define LONG 1\n"
