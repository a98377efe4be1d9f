"""The registry: sources copied under the root, records replaced atomically."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from distkernel.core.errors import UserError
from distkernel.target.extmod import registry
from tests.target.extmod.conftest import EXTMOD, fake_module


def test_kbuild_source_is_copied_without_build_leftovers(tmp_path: Path) -> None:
    src = fake_module(tmp_path / "src", "foo", **{"foo.o": "stale", ".foo.o.cmd": "stale"})
    root = tmp_path / "root"
    rec = registry.add(root, src, initramfs=True)
    assert (rec.name, rec.kind, rec.initramfs, rec.required, rec.autoinstall) == ("foo", "kbuild", True, False, True)
    assert rec.version == rec.source_sha256[:12]
    copy = root / "var/lib/distkernel/modules/foo" / rec.source
    assert sorted(p.name for p in copy.iterdir()) == ["Kbuild", "foo.c"]
    assert json.loads((root / "var/lib/distkernel/modules/foo/record.json").read_text())["source"] == rec.source
    assert registry.get(root, "foo") == rec and registry.registered(root) == [rec]


def test_dkms_source_takes_name_and_version_from_dkms_conf(tmp_path: Path) -> None:
    rec = registry.add(tmp_path, EXTMOD / "dkms")
    assert (rec.name, rec.version, rec.kind, rec.modules) == ("dk_dkms", "1.2", "dkms", ("dk_dkms", "dk_dkms_extra"))
    assert rec.ignored == ("POST_INSTALL (not run: the root is not this machine)",)
    assert (rec.package_name, rec.package_version, rec.autoinstall, rec.remake_initrd) == (
        "dk_dkms",
        "1.2",
        True,
        False,
    )
    assert registry.add(tmp_path, EXTMOD / "dkms", name="other", version="9").version == "9"


def test_a_dkms_source_named_relative_to_the_caller(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`modules add mod` from the folder holding mod: dkms.conf is still found, although
    bash evaluates it from the module's own folder."""
    monkeypatch.chdir(EXTMOD.parent)
    rec = registry.add(tmp_path, Path(EXTMOD.name) / "dkms")
    assert (rec.name, rec.version) == ("dk_dkms", "1.2")


def test_adding_again_replaces_the_source(tmp_path: Path) -> None:
    src = fake_module(tmp_path / "src", "foo")
    first = registry.add(tmp_path / "root", src)
    (src / "foo.c").write_text("int changed;\n")
    second = registry.add(tmp_path / "root", src, required=True)
    assert second.source != first.source and second.required
    entry = tmp_path / "root/var/lib/distkernel/modules/foo"
    assert sorted(p.name for p in entry.iterdir()) == ["record.json", second.source]


def test_bad_sources_are_refused_and_leave_nothing(tmp_path: Path) -> None:
    root = tmp_path / "root"
    with pytest.raises(UserError, match="not a folder"):
        registry.add(root, tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match=r"no Kbuild, Makefile or dkms\.conf"):
        registry.add(root, tmp_path / "empty")
    assert registry.registered(root) == []


def test_bad_names_and_missing_versions(tmp_path: Path) -> None:
    src = fake_module(tmp_path / "src", "foo")
    with pytest.raises(UserError, match=r"module name '\.\./x' is not valid"):
        registry.add(tmp_path / "root", src, name="../x")
    conf = tmp_path / "noversion"
    conf.mkdir()
    (conf / "dkms.conf").write_text("PACKAGE_NAME=nov\n")
    with pytest.raises(UserError, match="PACKAGE_VERSION is not set; add it or pass --version"):
        registry.add(tmp_path / "root", conf)
    assert not (tmp_path / "root/var/lib/distkernel/modules/nov").exists()
    with pytest.raises(UserError, match="no module 'nope' is registered"):
        registry.get(tmp_path / "root", "nope")


def test_drop_forgets_everything(tmp_path: Path) -> None:
    registry.add(tmp_path, fake_module(tmp_path / "src", "foo"))
    registry.save_status(tmp_path, "foo", registry.KernelStatus("6.1.0", "1", "built", files=("updates/foo.ko",)))
    assert registry.statuses(tmp_path, "foo")[0].files == ("updates/foo.ko",)
    registry.drop(tmp_path, "foo")
    assert registry.registered(tmp_path) == [] and not registry.entry_dir(tmp_path, "foo").exists()


@pytest.mark.parametrize(
    "damage",
    [
        b"{not json",
        b'{"release": "other", "status": "built"}',
        b'{"release": "6.1.0"}',
        b'{"release": "6.1.0", "version": "1", "status": "built", "files": ["../../etc/x"]}',
    ],
)
def test_a_damaged_build_status_fails_closed(tmp_path: Path, damage: bytes) -> None:
    registry.add(tmp_path, fake_module(tmp_path / "src", "foo"))
    registry.save_status(tmp_path, "foo", registry.KernelStatus("6.1.0", "1", "built", files=("updates/foo.ko",)))
    path = registry.status_path(tmp_path, "foo", "6.1.0")
    path.write_bytes(damage)
    with pytest.raises(UserError, match="damaged module build status") as e:
        registry.load_status(tmp_path, "foo", "6.1.0")
    assert str(path) in e.value.message and "distkernel modules rebuild foo --kernel 6.1.0" in e.value.message
    with pytest.raises(UserError, match="damaged"):
        registry.statuses(tmp_path, "foo")
    assert registry.load_status(tmp_path, "foo", "6.2.0") is None  # never built is still None
