"""Debian's own, unmodified kernel hooks (systemd, systemd-boot, dracut, grub2-common and
dkms of bookworm, fetched with `apt-get download`, cached under the user cache dir, and
extracted with dpkg-deb -x into a root with the shell and tools they call) around a real
install and removal of the default package, with every layout: exit 0, the hooks that do
not redo install's work ran (chrooted into the root), and no file under /boot or the ESP
that the state does not record."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from distkernel.core.cache import cache_dir, flocked
from distkernel.target.install import load_state
from tests.conftest import Built, cli
from tests.target.install.helpers import make_root

# The hooks run chrooted into the root, in namespaces of their own: that needs root.
pytestmark = [pytest.mark.kernel, pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chroot")]

# The packages whose hooks are under test, and what their hooks need to run in the root.
HOOK_PACKAGES = ("systemd", "systemd-boot", "dracut", "dracut-core", "grub2-common", "dkms")
RUNTIME = ("busybox-static", "bash", "libc6", "libtinfo6")
ESP = "efi"


def debian_debs(names: tuple[str, ...]) -> list[Path]:
    """The archive's current .deb of each name, downloaded once into the user cache."""
    where = cache_dir("test-debs", "bookworm")
    with flocked(where / ".lock"):
        missing = [n for n in names if not list(where.glob(f"{n}_*.deb"))]
        if missing:
            subprocess.run(["apt-get", "download", *missing], cwd=where, check=True, capture_output=True)
    return [sorted(where.glob(f"{n}_*.deb"))[-1] for n in names]


def debian_hook_root(path: Path) -> Path:
    """A non-merged-/usr root holding the packages' files as dpkg-deb -x leaves them,
    busybox's applets as the small tools, and the folders a Debian root has."""
    make_root(path, merged_usr=False)
    for deb in debian_debs(HOOK_PACKAGES + RUNTIME):
        subprocess.run(["dpkg-deb", "-x", deb, path], check=True)
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "dev", "proc", "tmp", "sys", f"{ESP}/EFI"):
        (path / d).mkdir(parents=True, exist_ok=True)
    subprocess.run(["chroot", path, "/bin/busybox", "--install", "-s"], check=True, capture_output=True)
    return path


def stray_files(root: Path) -> list[str]:
    """Files under /boot and the ESP that no kernel's record or shared file names (but for
    systemd-boot's loader.conf: the user's settings, where install only sets `default`)."""
    state = load_state(root)
    known = {f.path for k in state.kernels.values() for f in k.files} | {f.path for f in state.shared}
    known.add(f"{ESP}/loader/loader.conf")
    out = []
    for top in ("boot", ESP):
        for dirpath, _, names in os.walk(root / top):
            for n in names:
                rel = str((Path(dirpath) / n).relative_to(root))
                if rel not in known:
                    out.append(rel)
    return sorted(out)


@pytest.mark.parametrize("layout", ["plain", "grub", "bls", "uki"])
def test_debian_hooks_with_every_layout(default_package: Built, tmp_path: Path, layout: str) -> None:
    root = debian_hook_root(tmp_path / "root")
    release = default_package.metadata["kernel_release"]
    run = cli("install", default_package.package, "--root", root, "--layout", layout, "--json")
    assert run.code == 0, run.err
    assert "warning" not in run.err
    ran = run.json()["hooks"]
    assert ran == [
        "/usr/lib/kernel/install.d/85-initrd.install",
        "/etc/kernel/postinst.d/dkms",
        "/etc/kernel/header_postinst.d/dkms",
    ]
    log = (root / "var/log/distkernel/plugins.log").read_text()
    assert f"dkms: running auto installation service for kernel {release}" in log  # headers found at .../build
    expected = {"plain": f"/boot/vmlinuz-{release}", "grub": f"/boot/vmlinuz-{release}"}
    assert f"$ /etc/kernel/postinst.d/dkms {release} {expected.get(layout, f'/lib/modules/{release}/vmlinuz')}" in log
    assert stray_files(root) == []
    assert not (root / "dev/null").exists() and not list((root / "tmp").iterdir())  # the hooks' own, gone
    run = cli("remove", release, "--root", root, "--force")
    assert run.code == 0, run.err
    assert f"$ /etc/kernel/prerm.d/dkms {release}" in (root / "var/log/distkernel/plugins.log").read_text()
    assert stray_files(root) == []
