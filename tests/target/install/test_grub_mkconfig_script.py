"""The grub layout on a root whose grub.cfg its own grub-mkconfig writes (Debian's
grub2-common): distkernel's /etc/grub.d script puts our entries, our default and a
trial's count into it. The real grub-mkconfig and /etc/grub.d scripts of this machine
(GRUB 2.06, as in a Debian 12 root) run against the sandbox root, in a private mount
namespace where the root's /etc/grub.d and /boot are bound over this machine's (which
stay as they are); the real grub-script-check checks what it wrote."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from distkernel.target.install import install_package, mark_good, remove_kernel
from distkernel.target.install.target import layouts_data
from tests.conftest import assert_user_facing_error, cli
from tests.hostile import snapshot
from tests.target.install.helpers import consistent, fake_package, make_root

SCRIPT = layouts_data()["grub"]["mkconfig_script"]
TRIES = int(layouts_data()["grub"]["tries"])
GRUB_D = Path("/etc/grub.d")
MKCONFIG = shutil.which("grub-mkconfig")
# In a private mount namespace: the root's /etc/grub.d and /boot stand in for this
# machine's, and grub-mkconfig writes the root's grub.cfg.
BOUND = (
    'mount --bind "$1/etc/grub.d" /etc/grub.d && mount --bind "$1/boot" /boot && exec "$2" -o "$1/boot/grub/grub.cfg"'
)

pytestmark = pytest.mark.skipif(
    not (MKCONFIG and shutil.which("grub-script-check") and (GRUB_D / "00_header").is_file() and os.geteuid() == 0),
    reason="needs grub-mkconfig and /etc/grub.d (grub-common), grub-script-check, root (a private mount namespace)",
)


@pytest.fixture(scope="module")
def pkgs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("pkgs")
    return {r: fake_package(out / r, r) for r in ("6.1.0-fake", "6.2.0-fake")}


def debian_grub_root(path: Path) -> Path:
    """A root with GRUB's grub-mkconfig and its /etc/grub.d scripts (this machine's)."""
    root = make_root(path)
    assert MKCONFIG is not None
    (root / "usr/sbin").mkdir(parents=True)
    shutil.copy2(MKCONFIG, root / "usr/sbin/grub-mkconfig")
    (root / "etc/grub.d").mkdir()
    for name in ("00_header", "10_linux"):
        shutil.copy2(GRUB_D / name, root / "etc/grub.d" / name)
    (root / "boot/grub").mkdir()
    return root


def grub_mkconfig(root: Path) -> str:
    """The real grub-mkconfig over ROOT (as install runs it after a commit), its output
    checked by the real grub-script-check."""
    assert MKCONFIG is not None and Path("/boot").is_dir()
    done = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", BOUND, "sh", root, MKCONFIG],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    cfg = root / "boot/grub/grub.cfg"
    subprocess.run(["grub-script-check", cfg], check=True)
    return cfg.read_text()


def our_part(cfg: str) -> str:
    begin, end = f"### BEGIN /{SCRIPT} ###", f"### END /{SCRIPT} ###"
    assert cfg.index("### END /etc/grub.d/00_header ###") < cfg.index(begin) < cfg.index("10_linux ###")
    return cfg[cfg.index(begin) : cfg.index(end)]


def test_grub_mkconfig_output_carries_our_entries_and_the_trial(pkgs: dict[str, Path], tmp_path: Path) -> None:
    root = debian_grub_root(tmp_path / "r")
    install_package(pkgs["6.1.0-fake"], root, layout="grub", initramfs="none")
    script = root / SCRIPT
    assert script.stat().st_mode & 0o777 == 0o755  # grub-mkconfig runs only executable scripts
    ours = our_part(grub_mkconfig(root))
    assert "set default='distkernel-6.1.0-fake'" in ours and "save_env" not in ours
    assert "menuentry 'Test OS, Linux 6.1.0-fake' --id 'distkernel-6.1.0-fake'" in ours

    mark_good(root)
    install_package(pkgs["6.2.0-fake"], root, layout="grub", initramfs="none")
    ours = our_part(grub_mkconfig(root))
    # grub-reboot's one-time entry (00_header's boot_once) boots without taking a try.
    assert 'if [ "${boot_once}" != true ]; then' in ours
    assert "\tset default='distkernel-6.1.0-fake'" in ours  # the known-good kernel, once no try is left
    assert "\tload_env distkernel_trial distkernel_tries" in ours
    for n in range(TRIES, 0, -1):
        assert f'"${{distkernel_trial}}" = \'6.2.0-fake\' -a "${{distkernel_tries}}" = "{n}" ]' in ours
    assert "\t\tsave_env distkernel_tries" in ours and "\t\tset default='distkernel-6.2.0-fake'" in ours
    assert ours.index("--id 'distkernel-6.2.0-fake'") < ours.index("--id 'distkernel-6.1.0-fake'")
    grubenv = (root / "boot/grub/grubenv").read_text()
    assert "distkernel_trial=6.2.0-fake\n" in grubenv and f"distkernel_tries={TRIES}\n" in grubenv
    run = cli("list", "--root", root, "--json")
    assert {k["release"]: k["boot"] for k in run.json()["kernels"]}["6.2.0-fake"] == (
        f"on trial: {TRIES} tries left, 0 done"
    )

    mark_good(root, "6.2.0-fake")  # the trial ends: the plain default
    ours = our_part(grub_mkconfig(root))
    assert "\tset default='distkernel-6.2.0-fake'" in ours and "save_env" not in ours

    remove_kernel(root, "6.1.0-fake")
    remove_kernel(root, "6.2.0-fake", keep_last=False)
    assert not script.exists()
    assert f"/{SCRIPT}" not in grub_mkconfig(root)


def test_a_foreign_grub_d_script_of_that_name_is_refused(pkgs: dict[str, Path], tmp_path: Path) -> None:
    root = debian_grub_root(tmp_path / "r")
    (root / SCRIPT).write_text("#!/bin/sh\necho '# the administrator's'\n")
    before = snapshot(root)
    run = cli("install", pkgs["6.1.0-fake"], "--root", root, "--layout", "grub", "--initramfs", "none")
    assert_user_facing_error(run, 2, f"{root / SCRIPT}: was not created by distkernel")
    assert snapshot(root) == before


def test_a_root_that_gains_grub_mkconfig_keeps_our_grub_cfg_until_grub_mkconfig_replaces_it(
    pkgs: dict[str, Path], tmp_path: Path
) -> None:
    """Never a root without grub.cfg: a grub-mkconfig that fails after the commit leaves
    the last one (the real-system walk installs its first kernel this way)."""
    root = make_root(tmp_path / "r")
    install_package(pkgs["6.1.0-fake"], root, layout="grub", initramfs="none")
    ours = (root / "boot/grub/grub.cfg").read_bytes()
    debian = debian_grub_root(tmp_path / "debian")
    shutil.copytree(debian / "usr/sbin", root / "usr/sbin")
    shutil.copytree(debian / "etc/grub.d", root / "etc/grub.d")
    mark_good(root)  # a commit: its grub-mkconfig is not run here (no /bin/sh to chroot to)
    assert (root / "boot/grub/grub.cfg").read_bytes() == ours and (root / SCRIPT).is_file()
    assert "boot/grub/grub.cfg" not in [f.path for f in consistent(root).shared]
    assert f"### BEGIN /{SCRIPT} ###" in grub_mkconfig(root)
