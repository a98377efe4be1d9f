"""One package into four roots, one per layout; what each layout writes."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from distkernel.target.install import install_package
from tests.conftest import assert_user_facing_error, cli
from tests.target.install.helpers import consistent, fake_package, make_root, shell_root

TOKEN = "0123456789abcdef0123456789abcdef"
CMDLINE = "console=ttyS0 root=/dev/vda ro"


@pytest.fixture(scope="module")
def pkg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fake_package(tmp_path_factory.mktemp("pkg"))


def test_plain(pkg: Path, tmp_path: Path) -> None:
    root = make_root(tmp_path / "r")
    inst = install_package(pkg, root, layout="plain", initramfs="builtin", cmdline=CMDLINE, with_headers=True)
    boot = root / "boot"
    for name in ("vmlinuz-6.1.0-fake", "initramfs-6.1.0-fake.img", "System.map-6.1.0-fake", "config-6.1.0-fake"):
        assert (boot / name).is_file(), name
    assert (boot / "vmlinuz").readlink() == Path("vmlinuz-6.1.0-fake")
    assert inst.default and inst.initrd == boot / "initramfs-6.1.0-fake.img"
    moddir = root / "usr/lib/modules/6.1.0-fake"  # merged /usr: lib -> usr/lib
    assert (moddir / "modules.dep").is_file() and (moddir / "vmlinuz").is_file()
    assert (moddir / "build").resolve() == (root / "usr/src/linux-headers-6.1.0-fake").resolve()
    assert (moddir / "build/include/linux/fake.h").is_file()
    consistent(root)


def test_split_usr_root_gets_lib_modules(pkg: Path, tmp_path: Path) -> None:
    root = make_root(tmp_path / "r", merged_usr=False)
    install_package(pkg, root, layout="plain", initramfs="none")
    assert (root / "lib/modules/6.1.0-fake/modules.dep").is_file()
    assert not (root / "boot/initramfs-6.1.0-fake.img").exists()


def test_grub_cfg_is_valid_grub_script(pkg: Path, tmp_path: Path) -> None:
    root = make_root(tmp_path / "r")
    inst = install_package(pkg, root, layout="grub", initramfs="builtin", cmdline=CMDLINE)
    cfg = root / "boot/grub/grub.cfg"
    assert inst.entries == (cfg,)
    text = cfg.read_text()
    assert "linux /boot/vmlinuz-6.1.0-fake console=ttyS0 root=/dev/vda ro" in text
    assert "initrd /boot/initramfs-6.1.0-fake.img" in text
    if shutil.which("grub-script-check"):
        subprocess.run(["grub-script-check", cfg], check=True)
    consistent(root)


def test_bls_on_esp_with_entry_token(pkg: Path, tmp_path: Path) -> None:
    root = make_root(tmp_path / "r")
    (root / "efi/EFI").mkdir(parents=True)  # an ESP at /efi
    (root / "etc/kernel").mkdir()
    (root / "etc/kernel/entry-token").write_text("mytoken\n")
    (root / "etc/kernel/cmdline").write_text("root=LABEL=root quiet\n")
    inst = install_package(pkg, root, layout="bls", initramfs="builtin")
    entry = root / "efi/loader/entries/mytoken-6.1.0-fake+3.conf"  # on trial: boot counting
    assert inst.entries == (entry,)
    text = entry.read_text()
    assert "linux      /mytoken/6.1.0-fake/linux" in text
    assert "initrd     /mytoken/6.1.0-fake/initrd" in text
    assert "options    root=LABEL=root quiet" in text
    assert (root / "efi/mytoken/6.1.0-fake/linux").is_file()
    assert "default mytoken-*" in (root / "efi/loader/loader.conf").read_text()
    consistent(root)


def test_uki_has_the_stub_sections(pkg: Path, tmp_path: Path) -> None:
    root = make_root(tmp_path / "r")
    inst = install_package(pkg, root, layout="uki", initramfs="builtin", cmdline=CMDLINE)
    uki = root / f"boot/EFI/Linux/{TOKEN}-6.1.0-fake+3.efi"
    assert inst.uki == uki == inst.image
    headers = subprocess.run(["objdump", "-h", uki], capture_output=True, text=True, check=True).stdout
    found = [line.split()[1] for line in headers.splitlines() if line.strip()[:1].isdigit()]
    assert [s for s in found if s in (".osrel", ".cmdline", ".uname", ".initrd", ".linux")] == [
        ".osrel",
        ".cmdline",
        ".uname",
        ".initrd",
        ".linux",
    ]
    out = tmp_path / "cmdline"
    subprocess.run(["objcopy", "-O", "binary", "--only-section=.cmdline", uki, out], check=True)
    assert out.read_text() == CMDLINE
    consistent(root)


def test_layout_from_install_conf_and_detection(pkg: Path, tmp_path: Path) -> None:
    root = make_root(tmp_path / "conf")
    (root / "etc/kernel").mkdir()
    (root / "etc/kernel/install.conf").write_text("layout=bls\ninitrd_generator=none\n")
    inst = install_package(pkg, root)
    assert (inst.layout, inst.initramfs_backend, inst.initrd) == ("bls", "none", None)
    detected = make_root(tmp_path / "detect")
    (detected / "boot/grub").mkdir()
    (detected / "boot/grub/grub.cfg").write_text("")
    assert install_package(pkg, detected, initramfs="none").layout == "grub"
    for name, uki, layout in (("bootctl", False, "bls"), ("ukis", True, "uki")):
        fresh = make_root(tmp_path / name)  # what `bootctl install` leaves: an empty EFI/Linux
        for folder in ("efi/EFI/Linux", "efi/loader/entries", "efi/EFI/systemd"):
            (fresh / folder).mkdir(parents=True)
        if uki:
            (fresh / "efi/EFI/Linux/other-6.1.efi").write_bytes(b"MZ")  # someone's UKI
        assert install_package(pkg, fresh, initramfs="none").layout == layout


def test_bad_layout_in_install_conf_is_one_line(pkg: Path, tmp_path: Path) -> None:
    root = make_root(tmp_path / "r")
    (root / "etc/kernel").mkdir()
    (root / "etc/kernel/install.conf").write_text("layout=lilo\n")
    run = cli("install", pkg, "--root", root)
    assert run.code == 2 and "etc/kernel/install.conf:1: layout=lilo is not supported" in run.err
    assert not (root / "var/lib/distkernel/state.json").exists()


def test_the_roots_grub_mkconfig_writes_grub_cfg(pkg: Path, tmp_path: Path) -> None:
    """A root with grub-mkconfig: it runs chrooted after the commit; its failure names its log."""
    root = shell_root(tmp_path / "r")
    tool = root / "usr/sbin/grub-mkconfig"
    tool.parent.mkdir(parents=True)
    tool.write_text('#!/bin/sh\necho "# by the root\'s grub-mkconfig" > "$2"\n')
    tool.chmod(0o755)
    (root / "boot/grub").mkdir()
    plan = cli("install", pkg, "--root", root, "--layout", "grub", "--initramfs", "none", "--dry-run", "--json")
    assert "etc/grub.d/09_distkernel" in plan.json()["rewrite"]  # the script grub-mkconfig runs
    install_package(pkg, root, layout="grub", initramfs="none")
    assert (root / "boot/grub/grub.cfg").read_text() == "# by the root's grub-mkconfig\n"
    assert (root / "etc/grub.d/09_distkernel").is_file()
    tool.write_text("#!/bin/sh\necho 'grub-mkconfig: error: no disk' >&2\nexit 1\n")
    run = cli("remove", "6.1.0-fake", "--root", root, "--force")  # the last kernel: the CLI asks for --force
    assert_user_facing_error(run, 3, "grub-mkconfig failed")
    assert "grub-mkconfig.log" in run.err and "no disk" in run.err


def test_layout_names_come_from_the_registry() -> None:
    """A layout is one module (defining LAYOUT) plus its table in layouts.toml; every
    other list of names is derived from the registry or checked against it here."""
    from distkernel.target.install import layouts
    from distkernel.target.install.target import layouts_data

    folder = Path(layouts.__file__).parent
    modules = sorted(p.stem for p in folder.glob("*.py") if p.stem not in ("__init__", "base"))
    assert list(layouts.LAYOUTS) == modules == sorted(layouts.REGISTRY)
    data = layouts_data()
    for name in layouts.LAYOUTS:
        assert isinstance(data[name], dict), name
    named = {*data["aliases"].values(), *(rule["layout"] for rule in data["detect"]), data["fallback"]}
    assert named <= set(layouts.LAYOUTS)
    run = cli("install", "--help")
    assert "[" + "|".join(layouts.LAYOUTS) + "]" in run.out.replace("\n", "").replace(" ", "")


def test_an_unknown_layout_is_one_line(pkg: Path, tmp_path: Path) -> None:
    from distkernel.core.errors import UserError
    from distkernel.target.install import layouts
    from distkernel.target.install.target import Target

    target = Target.probe(make_root(tmp_path / "r"))
    with pytest.raises(UserError, match="unknown layout 'lilo'; use one of: bls, grub, plain, uki"):
        layouts.choose(target, "lilo")
