"""What users see of a module's state, through the real entry point on roots holding a
small fake kernel: excluded is neither failed nor ok, `modules list` shows only kernels
that are installed, a damaged build status is one line naming the file and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from distkernel.target.extmod import registry
from distkernel.target.install import install_package
from tests.conftest import assert_user_facing_error, cli
from tests.target.extmod.conftest import FAKE_MAKEFILE, fake_module
from tests.target.install.helpers import fake_package, make_root


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("pkgs")
    return {r: fake_package(out / r, release=r) for r in ("6.1.0-older", "6.1.0-newer")}


def installed(root: Path, pkg: Path, release: str) -> None:
    install_package(pkg, root, layout="plain", initramfs="none", with_headers=True)
    (root / f"usr/src/linux-headers-{release}/Makefile").write_text(FAKE_MAKEFILE)


def test_an_excluded_module_is_reported_with_its_rule_not_as_ok(packages: dict[str, Path], tmp_path: Path) -> None:
    root = make_root(tmp_path / "root")
    src = fake_module(tmp_path, "exc")
    (src / "dkms.conf").write_text(
        'PACKAGE_NAME=exc\nPACKAGE_VERSION=1\nDEST_MODULE_LOCATION[0]="/extra"\nAUTOINSTALL=yes\n'
        'BUILD_EXCLUSIVE_CONFIG="CONFIG_MODULES !CONFIG_BLK_DEV_INITRD"\n'
    )
    assert cli("modules", "add", src, "--root", root).code == 0
    run = cli(
        "install", packages["6.1.0-newer"], "--root", root, "--layout", "plain", "--initramfs", "none", "--with-headers"
    )
    assert run.code == 0, run.err
    rule = (
        'excluded: BUILD_EXCLUSIVE_CONFIG="CONFIG_MODULES !CONFIG_BLK_DEV_INITRD": the kernel has CONFIG_BLK_DEV_INITRD'
    )
    (line,) = [x for x in run.out.splitlines() if "exc 1:" in x]
    assert rule in line and ": ok" not in line and "FAILED" not in line
    (kernel,) = cli("list", "--root", root, "--json").json()["kernels"]
    assert [(m["name"], m["status"], m["ok"]) for m in kernel["external_modules"]] == [("exc", "excluded", True)]
    listed = cli("modules", "list", "--root", root).out
    assert "excluded" in listed and "the kernel has CONFIG_BLK_DEV_INITRD" in listed


def test_modules_list_never_shows_builds_for_removed_kernels(packages: dict[str, Path], tmp_path: Path) -> None:
    root = make_root(tmp_path / "root")
    for release, pkg in packages.items():
        installed(root, pkg, release)
    assert cli("modules", "add", fake_module(tmp_path, "mod"), "--root", root).code == 0
    assert cli("modules", "rebuild", "--all", "--root", root).code == 0

    def kernels() -> list[str]:
        listed = cli("modules", "list", "--root", root, "--json").json()
        return [s["release"] for e in listed for s in e["kernels"]]

    assert sorted(kernels()) == ["6.1.0-newer", "6.1.0-older"]
    assert cli("remove", "6.1.0-older", "--root", root).code == 0
    assert kernels() == ["6.1.0-newer"]
    assert "6.1.0-older" not in cli("modules", "list", "--root", root).out


def test_a_damaged_build_status_is_one_line_naming_the_file_and_the_fix(
    packages: dict[str, Path], tmp_path: Path
) -> None:
    root = make_root(tmp_path / "root")
    installed(root, packages["6.1.0-newer"], "6.1.0-newer")
    assert cli("modules", "add", fake_module(tmp_path, "mod"), "--root", root).code == 0
    status = registry.status_path(root, "mod", "6.1.0-newer")
    status.write_text('{"release": "6.1.0-newer", "status": "bui')
    fix = "delete it, then run `distkernel modules rebuild mod --kernel 6.1.0-newer`"
    for argv in (("modules", "list"), ("modules", "rebuild", "mod"), ("modules", "remove", "mod")):
        assert_user_facing_error(cli(*argv, "--root", root), 2, str(status), "damaged module build status", fix)
    status.unlink()
    assert cli("modules", "rebuild", "mod", "--kernel", "6.1.0-newer", "--root", root).code == 0
    assert (root / "lib/modules/6.1.0-newer/updates/mod.ko").is_file()


def test_remake_initrd_makes_the_initramfs_again(packages: dict[str, Path], tmp_path: Path) -> None:
    root = make_root(tmp_path / "root")
    install_package(packages["6.1.0-newer"], root, layout="plain", initramfs="builtin", with_headers=True)
    (root / "usr/src/linux-headers-6.1.0-newer/Makefile").write_text(FAKE_MAKEFILE)
    for name, remake in (("plain", ""), ("remake", "REMAKE_INITRD=yes\n")):
        src = fake_module(tmp_path, name)
        (src / "dkms.conf").write_text(
            f'PACKAGE_NAME={name}\nPACKAGE_VERSION=1\nDEST_MODULE_LOCATION[0]="/extra"\nAUTOINSTALL=yes\n{remake}'
        )
        run = cli("modules", "add", src, "--root", root, "--json")
        assert run.code == 0, run.err
        assert run.json()["initramfs_refreshed"] == (["6.1.0-newer"] if remake else [])
