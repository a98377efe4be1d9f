"""export --format deb: Debian's own tools judge the .debs. lintian finds no error, and
dpkg installs, removes and purges them in a small Debian root (debroot.py) whose
/etc/kernel hooks run: initramfs-tools' make and delete an initramfs, and recording
hooks show the arguments and DEB_MAINT_PARAMS each maintainer script passes."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path

import pytest

from distkernel.build.package.reader import read_head
from distkernel.core.errors import UserError
from distkernel.workflows.export.deb import deb_names
from tests.conftest import Built, assert_user_facing_error, cli, env_with
from tests.workflows.export.debroot import in_root, make_root

pytestmark = pytest.mark.kernel

RECORD = """#!/bin/sh
echo "$(basename $(dirname $0)) $* [$DEB_MAINT_PARAMS]" >> /var/log/kernel-hooks
"""


@pytest.fixture(scope="module")
def debs(default_package: Built, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    out = tmp_path_factory.mktemp("debs")
    run = cli("export", default_package.package, "--format", "deb", "--out", out, "--json")
    assert run.code == 0, run.err
    return [Path(f["path"]) for f in run.json()["files"]]


def test_export_writes_image_and_headers_debs(debs: list[Path], default_package: Built) -> None:
    release = default_package.metadata["kernel_release"]
    assert sorted(p.name for p in debs) == sorted(
        f"linux-{kind}-{release}_{release}-1_amd64.deb" for kind in ("image", "headers")
    )
    image = next(p for p in debs if "linux-image" in p.name)
    listing = subprocess.run(["dpkg-deb", "--contents", image], capture_output=True, text=True, check=True).stdout
    for path in (f"./boot/vmlinuz-{release}", f"./boot/System.map-{release}", f"./boot/config-{release}"):
        assert path in listing
    assert f"./lib/modules/{release}/kernel/" in listing
    info = subprocess.run(["dpkg-deb", "--info", image], capture_output=True, text=True, check=True).stdout
    for script in ("preinst", "postinst", "prerm", "postrm", "md5sums"):
        assert script in info


def test_lintian_reports_no_error(debs: list[Path]) -> None:
    run = subprocess.run(["lintian", *map(str, debs)], capture_output=True, text=True, check=False)
    errors = [line for line in run.stdout.splitlines() if line.startswith("E:")]
    assert not errors, run.stdout
    assert run.returncode in (0, 2), run.stderr  # 2: warnings only


def test_dpkg_installs_removes_and_purges_in_a_debian_root_running_its_hooks(
    debs: list[Path], default_package: Built, tmp_path: Path
) -> None:
    release = default_package.metadata["kernel_release"]
    root = make_root(tmp_path / "root")
    for hook in ("preinst", "postinst", "prerm", "postrm"):
        (root / f"etc/kernel/{hook}.d").mkdir(parents=True, exist_ok=True)
        (root / f"etc/kernel/{hook}.d/zz-record").write_text(RECORD)
        (root / f"etc/kernel/{hook}.d/zz-record").chmod(0o755)
    for deb in debs:
        shutil.copy(deb, root / "tmp")
    run = in_root(root, "dpkg -i /tmp/*.deb")
    assert run.returncode == 0, run.stdout + run.stderr
    boot = root / "boot"
    assert (boot / f"vmlinuz-{release}").is_file()
    assert (boot / f"initrd.img-{release}").is_file()  # initramfs-tools' postinst.d hook ran
    assert (root / f"lib/modules/{release}/modules.dep").is_file()  # postinst ran depmod
    assert (root / f"lib/modules/{release}/build").resolve(strict=False) == Path(f"/usr/src/linux-headers-{release}")
    assert (root / f"usr/src/linux-headers-{release}/Makefile").is_file()
    assert in_root(root, f"dpkg -s linux-image-{release} | grep -q 'Status: install ok installed'").returncode == 0

    run = in_root(root, f"dpkg -r linux-image-{release} linux-headers-{release}")
    assert run.returncode == 0, run.stdout + run.stderr
    assert not (boot / f"vmlinuz-{release}").exists()
    assert not (boot / f"initrd.img-{release}").exists()  # initramfs-tools' postrm.d hook ran
    assert not (root / f"usr/src/linux-headers-{release}").exists()
    run = in_root(root, f"dpkg -P linux-image-{release}")
    assert run.returncode == 0, run.stdout + run.stderr
    assert not (root / f"lib/modules/{release}").exists()  # postrm purge took depmod's files

    image = f"/boot/vmlinuz-{release}"
    calls = (root / "var/log/kernel-hooks").read_text().splitlines()
    assert calls[0] == f"preinst.d {release} {image} [install]"
    assert calls[1] == f"postinst.d {release} {image} [configure ]"
    assert calls[2] == f"prerm.d {release} {image} [remove]"
    assert calls[3] == f"postrm.d {release} {image} [remove]"
    assert calls[4] == f"postrm.d {release} {image} [purge]"


def test_export_is_reproducible(debs: list[Path], default_package: Built, tmp_path: Path) -> None:
    run = cli("export", default_package.package, "--format", "deb", "--out", tmp_path, "--json")
    assert run.code == 0, run.err
    again = {Path(f["path"]).name: Path(f["path"]).read_bytes() for f in run.json()["files"]}
    assert again == {p.name: p.read_bytes() for p in debs}


def test_debs_are_xz_compressed_as_debians_own_kernel_packages(debs: list[Path]) -> None:
    for deb in debs:
        members = subprocess.run(["ar", "t", deb], capture_output=True, text=True, check=True).stdout.split()
        assert members == ["debian-binary", "control.tar.xz", "data.tar.xz"]


def test_dpkg_deb_settings_in_the_environment_change_no_byte(
    debs: list[Path], default_package: Built, tmp_path: Path
) -> None:
    env = env_with(DPKG_DEB_COMPRESSOR_TYPE="gzip", DPKG_DEB_COMPRESSOR_LEVEL="1", DPKG_DEB_THREADS_MAX="1")
    run = cli("export", default_package.package, "--format", "deb", "--out", tmp_path, "--json", env=env)
    assert run.code == 0, run.err
    again = {Path(f["path"]).name: Path(f["path"]).read_bytes() for f in run.json()["files"]}
    assert again == {p.name: p.read_bytes() for p in debs}


def test_a_release_debian_cannot_name_is_refused(default_package: Built) -> None:
    meta = read_head(default_package.package).metadata
    with pytest.raises(UserError, match="cannot name a Debian package"):
        deb_names(dataclasses.replace(meta, kernel_release="6.1.7_Custom"))


def test_a_file_that_is_no_package_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.tar.zst"
    bogus.write_bytes(b"not a package")
    out = tmp_path / "out"
    run = cli("export", bogus, "--format", "deb", "--out", out)
    assert_user_facing_error(run, 2, "bogus.tar.zst")
    assert not out.exists() or not any(out.iterdir())


def test_an_unknown_format_is_refused(default_package: Built, tmp_path: Path) -> None:
    run = cli("export", default_package.package, "--format", "rpm", "--out", tmp_path)
    assert_user_facing_error(run, 2, "--format")


def test_a_package_damaged_past_its_head_is_refused_and_nothing_is_written(
    default_package: Built, tmp_path: Path
) -> None:
    damaged = tmp_path / default_package.package.name
    data = bytearray(default_package.package.read_bytes())
    data[len(data) * 3 // 4] ^= 0xFF  # inside the payload: the head still reads
    damaged.write_bytes(data)
    out = tmp_path / "out"
    run = cli("export", damaged, "--format", "deb", "--out", out)
    assert_user_facing_error(run, 2, damaged.name)
    assert list(out.iterdir()) == []  # the staging folder is gone too
