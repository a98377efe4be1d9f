"""savedconfig, config.d of a root, bases (debian, running, file:), conflicts and
--strict, host tailoring: through the real config stage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from distkernel.build.config.assemble import check_strict
from distkernel.build.config.probe import probe
from distkernel.build.recipe import load_recipe
from distkernel.core.errors import UserError
from tests.build.config.conftest import Resolve, write_recipe

pytestmark = pytest.mark.kernel


def test_savedconfig_newest_earlier_is_brought_forward(resolve: Resolve, defconfig: Path, tmp_path: Path) -> None:
    saved = tmp_path / "saved"
    saved.mkdir()
    old = [
        line
        for line in defconfig.read_text().splitlines()
        if "CONFIG_KVM_GUEST" not in line and "CONFIG_X86_X2APIC" not in line
    ]
    (saved / "config-6.1.150").write_text("\n".join(old) + "\n")
    (saved / "config-6.1.100").write_text("CONFIG_64BIT=y\n")
    (saved / "config-6.2.1").write_text("CONFIG_64BIT=y\n")
    r = resolve(f'savedconfig = "{saved}"\noptions = {{ KVM_GUEST = "y" }}')
    assert r.report.base == "savedconfig config-6.1.150"
    assert any("brought config-6.1.150 forward" in n for n in r.report.notes)
    new = dict(r.report.new_options)
    assert new["CONFIG_X86_X2APIC"] == "n" and "CONFIG_KVM_GUEST" not in new  # asked for, so not new
    assert not r.report.misses


def test_savedconfig_missing_is_an_error(resolve: Resolve, tmp_path: Path) -> None:
    empty = tmp_path / "none"
    empty.mkdir()
    with pytest.raises(UserError, match=r"config.savedconfig: .* holds no config-6\.1\.\d+ nor an earlier"):
        resolve(f'savedconfig = "{empty}"')


def test_config_d_of_the_root_applies_after_fragments_in_name_order(resolve: Resolve, tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc/kernel/config.d").mkdir(parents=True)
    (root / "etc/kernel/config.d/20-b.config").write_text("CONFIG_PRINTK=y\nCONFIG_MODULES=y\n")
    (root / "etc/kernel/config.d/10-a.config").write_text("# CONFIG_PRINTK is not set\n")
    r = resolve(
        f'base = "tinyconfig"\nfragments = ["f.config"]\nconfig_d = true\nroot = "{root}"',
        {"f.config": "# CONFIG_MODULES is not set\n"},
    )
    by = {e.symbol: e for e in r.report.entries}
    assert str(by["CONFIG_PRINTK"].origin).endswith("20-b.config:1")
    assert [str(o.origin).rsplit("/", 1)[-1] for o in by["CONFIG_PRINTK"].overrides] == [
        "base tinyconfig",
        "10-a.config:1",
    ]
    assert by["CONFIG_MODULES"].conflict and by["CONFIG_MODULES"].took
    assert "overrides CONFIG_MODULES=n from f.config:1" in by["CONFIG_MODULES"].overridden()
    recipe = load_recipe(write_recipe(tmp_path / "strict", 'base = "tinyconfig"'))
    with pytest.raises(UserError, match="2 option\\(s\\) set differently by two inputs") as err:
        check_strict(recipe, r.report, True)
    assert any("the later input wins" in d for d in err.value.details)


def test_debian_base(resolve: Resolve) -> None:
    if not Path("/usr/src/linux-config-6.1/config.amd64_none_amd64.xz").is_file():
        pytest.skip("linux-config-6.1 is not installed")
    r = resolve('base = "debian"\noptions = { KVM = "m" }')
    assert r.report.base == "base debian (config.amd64_none_amd64.xz)"
    assert not r.report.misses


def test_running_base_of_a_root(resolve: Resolve, defconfig: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "boot").mkdir(parents=True)
    (root / "boot/config-6.1.0-old").write_text(defconfig.read_text())
    r = resolve(f'base = "running"\nroot = "{root}"\noptions = {{ KVM_GUEST = "y" }}')
    assert r.report.base.startswith("base running (") and "config-6.1.0-old" in r.report.base
    assert not r.report.misses


def _qemu_guest_probe(path: Path) -> Path:
    """What `distkernel probe` records in a small qemu guest (virtio disk and net)."""
    mods = ["virtio_net", "net_failover", "failover", "virtio_blk", "ext4", "jbd2", "mbcache", "crc16"]
    doc = {
        "format": 1,
        "arch": "x86_64",
        "kernel_release": "6.1.0-guest",
        "root_fs": "ext4",
        "firmware": "bios",
        "loaded_modules": mods,
        "modaliases": ["virtio:d00000001v00001AF4", "virtio:d00000002v00001AF4"],
        "alias_modules": ["virtio_net", "virtio_blk"],
        "module_sizes": {"e1000e": 500_000, "x86_pkg_temp_thermal": 20_000, "virtio_net": 90_000},
    }
    path.write_text(json.dumps(doc))
    return path


def test_tailoring_to_a_qemu_guest_keeps_what_it_needs(resolve: Resolve, defconfig: Path, tmp_path: Path) -> None:
    host = _qemu_guest_probe(tmp_path / "guest.json")
    r = resolve(f'base = "file:{defconfig}"\nfeatures = ["wireguard"]\ntailor = "{host}"\noptions = {{ E1000E = "m" }}')
    t = r.report.tailoring
    assert t is not None and t["modules_after"] < t["modules_before"], t
    assert t["size_saved_bytes"] == 20_000  # x86_pkg_temp_thermal went; e1000e was asked for, stayed
    text = r.path.read_text()
    assert "CONFIG_WIREGUARD=m" in text and "CONFIG_E1000E=m" in text
    assert any(n.startswith(f"tailored to guest.json: {t['modules_after']} modules") for n in r.report.notes)


def test_tailoring_to_this_machine(resolve: Resolve, defconfig: Path, tmp_path: Path) -> None:
    host = tmp_path / "host.json"
    doc = probe(Path("/"))
    assert doc["arch"] and doc["kernel_release"] and doc["firmware"] in ("efi", "bios")
    host.write_text(json.dumps(doc))
    r = resolve(f'base = "file:{defconfig}"\ntailor = "{host}"')
    t = r.report.tailoring
    assert t is not None and t["modules_after"] <= t["modules_before"]
