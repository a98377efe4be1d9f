"""The root's kernel-install plugins and installkernel hooks run, with their arguments,
in order; exit 77 stops the plugin chain."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from distkernel.target.install import install_package, remove_kernel
from tests.conftest import assert_user_facing_error, cli
from tests.target.install.helpers import consistent, fake_package, make_root, shell_root

REC = "/record"
# Chrooting into a root (in namespaces of its own) needs root privileges.
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="hooks of a root run chrooted, which needs root")
PLUGIN = """#!/bin/sh
echo "{name} $* layout=$KERNEL_INSTALL_LAYOUT token=$KERNEL_INSTALL_ENTRY_TOKEN boot=$KERNEL_INSTALL_BOOT_ROOT" >> {rec}
exit {code}
"""


def write(path: Path, text: str, mode: int = 0o755) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def add_hooks(root: Path, rec: str) -> None:
    d = root / "etc/kernel"
    write(d / "install.d/50-record.install", PLUGIN.format(name="p50", rec=rec, code=0))
    write(d / "install.d/60-stop.install", PLUGIN.format(name="p60", rec=rec, code=77))
    write(d / "install.d/70-never.install", PLUGIN.format(name="p70", rec=rec, code=0))
    write(root / "usr/lib/kernel/install.d/55-vendor.install", PLUGIN.format(name="p55", rec=rec, code=0))
    write(root / "usr/lib/kernel/install.d/50-record.install", PLUGIN.format(name="masked", rec=rec, code=0))
    write(root / "usr/lib/kernel/install.d/50-depmod.install", PLUGIN.format(name="ours", rec=rec, code=0))
    write(d / "postinst.d/zz-record", PLUGIN.format(name="postinst", rec=rec, code=0))
    write(d / "postinst.d/skipped.sh", PLUGIN.format(name="dotted", rec=rec, code=0))  # run-parts skips dots
    write(d / "postrm.d/record", PLUGIN.format(name="postrm", rec=rec, code=0))


@pytest.fixture(scope="module")
def pkg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fake_package(tmp_path_factory.mktemp("pkg"))


@needs_root
def test_hooks_run_chrooted_with_the_roots_view(pkg: Path, tmp_path: Path) -> None:
    root = shell_root(tmp_path / "r")
    add_hooks(root, REC)
    inst = install_package(pkg, root, layout="bls", initramfs="builtin")
    lines = (root / "record").read_text().splitlines()
    entry_dir = "/boot/0123456789abcdef0123456789abcdef/6.1.0-fake"
    image, initrd = f"{entry_dir}/linux", f"{entry_dir}/initrd"
    kernel = "/usr/lib/modules/6.1.0-fake/vmlinuz"  # Debian's hooks never get the ESP's copy
    env = "layout=bls token=0123456789abcdef0123456789abcdef boot=/boot"
    assert lines == [
        f"p50 add 6.1.0-fake {entry_dir} {image} {initrd} {env}",
        f"p55 add 6.1.0-fake {entry_dir} {image} {initrd} {env}",
        f"p60 add 6.1.0-fake {entry_dir} {image} {initrd} {env}",
        f"postinst 6.1.0-fake {kernel} {env}",
    ]
    assert inst.hooks[-1] == "/etc/kernel/postinst.d/zz-record"
    (root / "record").unlink()
    remove_kernel(root, "6.1.0-fake")
    lines = (root / "record").read_text().splitlines()
    assert lines[0].startswith(f"p50 remove 6.1.0-fake {entry_dir} layout=bls")
    assert lines[-1].startswith(f"postrm 6.1.0-fake {kernel}")


def test_hooks_of_a_root_without_a_shell_are_skipped_with_a_warning_never_run_here(pkg: Path, tmp_path: Path) -> None:
    canary = tmp_path / "written-on-this-machine"
    root = make_root(tmp_path / "r")
    write(root / "etc/kernel/postinst.d/record", f"#!/bin/sh\ntouch {canary}\n")
    write(root / "etc/kernel/install.d/50-record.install", f"#!/bin/sh\ntouch {canary}\n")
    run = cli("install", pkg, "--root", root, "--layout", "plain", "--initramfs", "none", "--json")
    assert run.code == 0, run.err
    assert run.json()["hooks"] == []
    warnings = [line for line in run.err.splitlines() if line.startswith("distkernel: warning: the hook ")]
    assert len(warnings) == 2 and "/etc/kernel/postinst.d/record was not run" in run.err
    assert "/etc/kernel/install.d/50-record.install was not run" in run.err and "no /bin/sh" in run.err
    assert not canary.exists()


@needs_root
def test_a_chrooted_hook_writing_an_absolute_path_writes_inside_the_root(pkg: Path, tmp_path: Path) -> None:
    """The absolute path is the root's: the file appears there, never on this machine;
    /tmp and /dev are the hook's own (private mounts), so nothing lands in the root's."""
    canary = f"/distkernel-canary-{tmp_path.name}"
    root = shell_root(tmp_path / "r")
    for d in ("dev", "tmp", "proc"):
        (root / d).mkdir()
    for applet in ("touch", "ls"):
        (root / "usr/bin" / applet).symlink_to("busybox")
    hook = f"#!/bin/sh\ntouch {canary} /tmp/scratch\nls /dev/null /proc/self > /dev/null\n"
    write(root / "etc/kernel/postinst.d/canary", hook)
    inst = install_package(pkg, root, layout="plain", initramfs="none")
    assert inst.hooks == ("/etc/kernel/postinst.d/canary",)
    assert (root / canary.lstrip("/")).is_file()
    assert not Path(canary).exists()
    assert sorted(p.name for p in (root / "tmp").iterdir()) == []
    assert sorted(p.name for p in (root / "dev").iterdir()) == []


@needs_root
def test_failing_hook_is_a_tool_error_after_the_install(pkg: Path, tmp_path: Path) -> None:
    from distkernel.core.errors import ToolError

    root = shell_root(tmp_path / "r")
    write(root / "etc/kernel/install.d/10-fail.install", "#!/bin/sh\necho broken >&2\nexit 3\n")
    with pytest.raises(ToolError, match=r"10-fail\.install failed"):
        install_package(pkg, root, layout="plain", initramfs="none")
    assert "6.1.0-fake" in consistent(root).kernels


@needs_root
def test_unrunnable_hooks(pkg: Path, tmp_path: Path) -> None:
    """Not executable: skipped, as kernel-install does; executable but its interpreter is
    not in the root: one clear line."""
    root = shell_root(tmp_path / "r")
    write(root / "etc/kernel/install.d/40-plain.install", "#!/bin/sh\nexit 1\n", mode=0o644)
    inst = install_package(pkg, root, initramfs="none")
    assert inst.hooks == ()
    write(root / "etc/kernel/install.d/40-plain.install", "#!/bin/no-such-shell\nexit 0\n")
    run = cli("install", pkg, "--root", root, "--initramfs", "none")
    assert_user_facing_error(run, 3, "cannot run", "40-plain.install")


@needs_root
def test_debian_phases_get_debians_arguments_and_a_failing_preinst_cancels(pkg: Path, tmp_path: Path) -> None:
    from distkernel.core.errors import ToolError

    root = shell_root(tmp_path / "r")
    rec = '#!/bin/sh\necho "{name} $* [$DEB_MAINT_PARAMS]" >> /record\n'
    for phase in ("preinst", "postinst", "header_postinst", "prerm", "postrm"):
        write(root / f"etc/kernel/{phase}.d/record", rec.format(name=phase))
    install_package(pkg, root, layout="plain", initramfs="none")
    remove_kernel(root, "6.1.0-fake")
    image = "/boot/vmlinuz-6.1.0-fake"
    assert (root / "record").read_text().splitlines() == [
        f"preinst 6.1.0-fake {image} [install]",
        f"postinst 6.1.0-fake {image} [configure]",
        "header_postinst 6.1.0-fake [configure]",
        f"prerm 6.1.0-fake {image} [remove]",
        f"postrm 6.1.0-fake {image} [remove]",
    ]
    write(root / "etc/kernel/preinst.d/refuse", "#!/bin/sh\necho not today >&2\nexit 1\n")
    with pytest.raises(
        ToolError, match=r"kernel 6\.1\.0-fake was not installed: the hook /etc/kernel/preinst\.d/refuse"
    ):
        install_package(pkg, root, layout="plain", initramfs="none")
    assert consistent(root).kernels == {}
    assert not (root / image.lstrip("/")).exists()
