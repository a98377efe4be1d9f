"""Hostile values never leave the root they were given, never reach a file the boot
loader reads, and files distkernel did not create are never replaced or removed.

Each case is tried through the CLI (one line, exit 2, no traceback, the whole tree
around the root byte-for-byte unchanged) and, where the package reader might refuse
the value first, against the install side itself: its defence must hold on its own."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from distkernel.core.errors import UserError
from distkernel.target.install import install_package, load_state, remove_kernel
from distkernel.target.install.layouts import bls, grub
from distkernel.target.install.layouts.base import KernelFiles
from distkernel.target.install.target import Target
from distkernel.target.install.transaction import transaction
from tests.conftest import Run, assert_user_facing_error, cli
from tests.hostile import snapshot
from tests.target.install.helpers import consistent, fake_package, make_root, with_release

ESCAPE = "6.1.192-x/../../../../ESCAPED"
GOOD = "6.1.0-fake"


def refused(run: Run, *needles: str) -> None:
    assert_user_facing_error(run, 2, *needles)
    assert len(run.err.strip().splitlines()) == 1, run.err


@pytest.fixture(scope="module")
def pkg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fake_package(tmp_path_factory.mktemp("pkg"), GOOD)


def nested_root(tmp_path: Path) -> Path:
    """A merged-/usr root three folders down, with folders of someone else's at the
    places a `../../../../ESCAPED` release reaches from its paths (the headers folder's
    lands beside the root, which an earlier version replaced)."""
    root = make_root(tmp_path / "top/a/b/root")
    for where in ("top", "top/a", "top/a/b"):
        (tmp_path / where / "ESCAPED").mkdir()
        (tmp_path / where / "ESCAPED/precious").write_text("not distkernel's\n")
    return root


@pytest.mark.parametrize("layout", ["plain", "bls"])
def test_a_release_with_dotdot_writes_nothing_outside_the_root(pkg: Path, tmp_path: Path, layout: str) -> None:
    root = nested_root(tmp_path)
    bad = with_release(pkg, tmp_path / "bad.tar.zst", ESCAPE)
    before = snapshot(tmp_path / "top")
    refused(cli("install", bad, "--root", root, "--layout", layout, "--initramfs", "none"), "kernel_release")
    assert snapshot(tmp_path / "top") == before
    for cmd in ("list", "recover"):  # the root is not left "bricked"
        assert cli(cmd, "--root", root).code == 0
    install_package(pkg, root, layout=layout, initramfs="none")
    consistent(root)


@pytest.mark.parametrize(
    "release", [ESCAPE, "..", ".", "", "a/b", "6.1.0\noptions init=/bin/sh", "6.1.0\x1b[2J", "x" * 300]
)
def test_the_install_side_refuses_a_release_that_is_not_a_plain_name(pkg: Path, tmp_path: Path, release: str) -> None:
    """Whatever the package reader lets through: the paths install builds refuse it."""
    root = make_root(tmp_path / "r")
    target = Target.probe(root)
    with pytest.raises(UserError, match="plain name"):
        target.modules_dir(release)
    with pytest.raises(UserError, match="plain name"):
        target.fmt("{boot}/vmlinuz-{release}", release)
    before = snapshot(root)
    with pytest.raises(UserError):
        install_package(with_release(pkg, tmp_path / "bad.tar.zst", release), root, initramfs="none")
    assert snapshot(root) == before


def test_a_write_through_a_link_out_of_the_root_is_refused(tmp_path: Path) -> None:
    root = make_root(tmp_path / "r")
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, root / "boot/loader")  # an absolute link: the host's folder, not the root's
    (root / "var/lib/distkernel").mkdir(parents=True)  # as the root's lock leaves it
    before = snapshot(tmp_path)
    with pytest.raises(UserError, match="leads out of the root"), transaction(root, "test") as tx:
        tx.stage("boot/loader/entries/x.conf")
    with pytest.raises(UserError, match="plain name"), transaction(root, "test") as tx:
        tx.delete("boot/../../outside")
    assert snapshot(tmp_path) == before


def test_a_state_dir_linked_out_of_the_root_is_refused(pkg: Path, tmp_path: Path) -> None:
    root = make_root(tmp_path / "r")
    (tmp_path / "elsewhere").mkdir()
    (root / "var/lib").mkdir(parents=True)
    os.symlink(tmp_path / "elsewhere", root / "var/lib/distkernel")
    before = snapshot(tmp_path)
    refused(cli("install", pkg, "--root", root, "--initramfs", "none"), "leads out of the root")
    assert snapshot(tmp_path) == before


def journal(root: Path, doc: dict) -> Path:  # type: ignore[type-arg]
    path = root / "var/lib/distkernel/journal.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    (path.parent / "lock").touch()  # a root with a journal had the lock taken
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize(
    "ops",
    [
        [{"op": "delete", "final": "../../outside"}],
        [{"op": "delete", "final": "/etc/hostname"}],
        [{"op": "put", "staged": "usr/lib/modules/.distkernel-1-1-x", "final": f"usr/lib/modules/{ESCAPE}"}],
        [{"op": "put", "staged": "boot/not-staged", "final": "boot/vmlinuz"}],
    ],
)
def test_a_journal_naming_paths_outside_the_root_is_left_alone(pkg: Path, tmp_path: Path, ops: list) -> None:  # type: ignore[type-arg]
    """The journal an older distkernel left after such a release (or any hand-made one):
    list, recover and install each say so in one line; nothing outside is touched."""
    root = make_root(tmp_path / "top/a/root")
    (tmp_path / "top/outside").write_text("keep me\n")
    (root / "boot/not-staged").write_text("x")
    journal(root, {"txid": "1-1", "what": "install x", "phase": "commit", "prefix": ".distkernel-1-1-", "dirs": [],
                   "made": [], "ops": ops})  # fmt: skip
    before = snapshot(tmp_path / "top")
    for args in (["list"], ["recover"], ["install", pkg, "--initramfs", "none"], ["remove", GOOD]):
        refused(cli(*args, "--root", root), "unreadable journal")
    assert snapshot(tmp_path / "top") == before


def test_a_staging_journal_naming_folders_outside_the_root_is_left_alone(tmp_path: Path) -> None:
    root = make_root(tmp_path / "top/root")
    (tmp_path / "top/.distkernel-1-1-victim").write_text("keep me\n")
    journal(root, {"txid": "1-1", "what": "install x", "phase": "staging", "prefix": ".distkernel-1-1-",
                   "dirs": [".."], "made": ["../../.."], "ops": []})  # fmt: skip
    before = snapshot(tmp_path / "top")
    refused(cli("recover", "--root", root), "unreadable journal")
    assert snapshot(tmp_path / "top") == before


def test_a_state_naming_a_release_that_is_not_a_plain_name_is_one_line(pkg: Path, tmp_path: Path) -> None:
    root = make_root(tmp_path / "top/root")
    install_package(pkg, root, layout="plain", initramfs="none")
    state = root / "var/lib/distkernel/state.json"
    doc = json.loads(state.read_text())
    doc["kernels"] = {ESCAPE: {**doc["kernels"][GOOD], "release": ESCAPE}}
    state.write_text(json.dumps(doc))
    before = snapshot(tmp_path / "top")
    for args in (["list"], ["recover"], ["remove", ESCAPE], ["mark-good"], ["install", pkg, "--initramfs", "none"]):
        refused(cli(*args, "--root", root), "state.json", "plain name")
    assert snapshot(tmp_path / "top") == before


def test_a_state_naming_files_outside_the_root_removes_nothing_there(pkg: Path, tmp_path: Path) -> None:
    root = make_root(tmp_path / "top/a/root")
    install_package(pkg, root, layout="plain", initramfs="none")
    outside = tmp_path / "top/outside"
    outside.mkdir()
    (outside / "data").write_text("keep me\n")
    state = root / "var/lib/distkernel/state.json"
    doc = json.loads(state.read_text())
    doc["kernels"][GOOD]["dirs"].append("../../outside")
    state.write_text(json.dumps(doc))
    before = snapshot(tmp_path / "top")
    refused(cli("remove", GOOD, "--root", root, "--force"), "plain name")
    with pytest.raises(UserError):
        remove_kernel(root, GOOD)
    assert snapshot(tmp_path / "top") == before


# --- nothing reaches a boot loader's file but single lines ---


def test_a_release_with_a_newline_never_reaches_a_bls_entry(pkg: Path, tmp_path: Path) -> None:
    root = make_root(tmp_path / "r")
    (root / "boot/loader").mkdir()
    (root / "boot/loader/loader.conf").write_text("timeout 3\n")
    bad = with_release(pkg, tmp_path / "bad.tar.zst", "6.1.0-x\noptions init=/bin/sh")
    before = snapshot(root)
    refused(cli("install", bad, "--root", root, "--layout", "bls", "--initramfs", "none"), "kernel_release")
    assert snapshot(root) == before


@pytest.mark.parametrize("layout", ["bls", "grub", "uki"])
def test_a_cmdline_with_a_newline_is_refused(pkg: Path, tmp_path: Path, layout: str) -> None:
    root = make_root(tmp_path / "r")
    before = snapshot(root)
    run = cli("install", pkg, "--root", root, "--layout", layout, "--initramfs", "none", "--cmdline", "ro\ninit=/x")
    refused(run, "--cmdline", "newline")
    assert snapshot(root) == before


def test_a_title_with_a_control_character_is_refused(pkg: Path, tmp_path: Path) -> None:
    root = make_root(tmp_path / "r")
    (root / "etc/os-release").write_text('ID=x\nPRETTY_NAME="Test\x1b[2JOS"\n')
    before = snapshot(root)
    refused(cli("install", pkg, "--root", root, "--layout", "bls", "--initramfs", "none"), "PRETTY_NAME")
    assert snapshot(root) == before


def test_the_boot_files_refuse_lines_from_any_source(tmp_path: Path) -> None:
    """The layouts' own text makers, given hostile values directly (a state edited by
    hand reaches grub.cfg without passing install's checks)."""
    target = Target.probe(make_root(tmp_path / "r"))
    files = KernelFiles(GOOD, Path(), None, Path(), Path(), "quiet\noptions init=/bin/sh", "x86_64")
    with pytest.raises(UserError, match="newline"):
        bls.entry_text(target, files, "boot/t/r/linux", "", "boot/loader/entries/t-r.conf")
    with pytest.raises(UserError, match="newline"):
        bls.loader_conf("boot/loader/loader.conf", "timeout 3\n", "x.conf\ndefault evil")
    from distkernel.target.install.state import KernelRecord, State

    k = KernelRecord(GOOD, "grub", "p", "x86_64", 1, "none", "ro\n}\nmenuentry evil {", "m", "h", image="boot/v")
    with pytest.raises(UserError, match="newline"):
        grub.render(target, State({GOOD: k}, GOOD))


def test_a_hand_edited_cmdline_in_the_state_never_reaches_grub_cfg(pkg: Path, tmp_path: Path) -> None:
    root = make_root(tmp_path / "r")
    install_package(pkg, root, layout="grub", initramfs="none")
    state = root / "var/lib/distkernel/state.json"
    doc = json.loads(state.read_text())
    doc["kernels"][GOOD]["cmdline"] = "ro\n}\nmenuentry evil {"
    state.write_text(json.dumps(doc))
    before = snapshot(root)
    refused(cli("mark-good", "--root", root), "grub.cfg", "newline")
    assert snapshot(root) == before


# --- files distkernel did not create ---


def test_a_foreign_boot_vmlinuz_is_not_replaced(pkg: Path, tmp_path: Path) -> None:
    root = make_root(tmp_path / "r")
    (root / "boot/vmlinuz").write_bytes(b"the distribution's kernel")
    before = snapshot(root)
    refused(cli("install", pkg, "--root", root, "--layout", "plain", "--initramfs", "none"), "boot/vmlinuz", "move it")
    assert snapshot(root) == before


@pytest.mark.parametrize("layout", ["plain", "bls", "uki"])
def test_a_foreign_file_where_the_layout_writes_is_not_replaced(pkg: Path, tmp_path: Path, layout: str) -> None:
    root = make_root(tmp_path / "r")
    token = "0123456789abcdef0123456789abcdef"
    where = {"plain": f"boot/vmlinuz-{GOOD}", "bls": f"boot/loader/entries/{token}-{GOOD}.conf",
             "uki": f"boot/EFI/Linux/{token}-{GOOD}.efi"}[layout]  # fmt: skip
    (root / where).parent.mkdir(parents=True, exist_ok=True)
    (root / where).write_text("theirs\n")
    before = snapshot(root)
    refused(cli("install", pkg, "--root", root, "--layout", layout, "--initramfs", "none"), where)
    assert snapshot(root) == before


def test_a_foreign_headers_tree_is_not_replaced(pkg: Path, tmp_path: Path) -> None:
    root = make_root(tmp_path / "r")
    (root / f"usr/src/linux-headers-{GOOD}").mkdir(parents=True)
    (root / f"usr/src/linux-headers-{GOOD}/Makefile").write_text("theirs\n")
    refused(cli("install", pkg, "--root", root, "--initramfs", "none"), f"linux-headers-{GOOD}")
    assert (root / f"usr/src/linux-headers-{GOOD}/Makefile").read_text() == "theirs\n"
    assert load_state(root).kernels == {}


def test_a_file_replaced_by_the_user_is_not_removed(pkg: Path, tmp_path: Path) -> None:
    """boot/vmlinuz was our link; the user put their own kernel there: remove leaves it,
    and so does every file of the kernel that no longer holds what was placed."""
    root = make_root(tmp_path / "r")
    install_package(pkg, root, layout="plain", initramfs="none")
    (root / "boot/vmlinuz").unlink()
    (root / "boot/vmlinuz").write_bytes(b"the user's own kernel")
    (root / f"boot/config-{GOOD}").write_text("edited by the user\n")
    assert cli("remove", GOOD, "--root", root, "--force").code == 0
    assert (root / "boot/vmlinuz").read_bytes() == b"the user's own kernel"
    assert (root / f"boot/config-{GOOD}").read_text() == "edited by the user\n"
    assert not (root / f"boot/vmlinuz-{GOOD}").exists() and load_state(root).kernels == {}


def test_a_file_replaced_by_the_user_is_not_overwritten(pkg: Path, tmp_path: Path) -> None:
    root = make_root(tmp_path / "r")
    install_package(pkg, root, layout="plain", initramfs="none")
    (root / "boot/vmlinuz").unlink()
    (root / "boot/vmlinuz").write_bytes(b"the user's own kernel")
    other = fake_package(tmp_path / "other", "6.1.0-other")
    refused(cli("install", other, "--root", root, "--initramfs", "none"), "boot/vmlinuz", "changed since")
    assert (root / "boot/vmlinuz").read_bytes() == b"the user's own kernel"


def test_a_default_line_in_loader_conf_that_is_not_ours_is_kept(pkg: Path, tmp_path: Path) -> None:
    root = make_root(tmp_path / "r")
    (root / "boot/loader/entries").mkdir(parents=True)
    conf = root / "boot/loader/loader.conf"
    conf.write_text("timeout 3\ndefault @saved\n")
    run = cli("install", pkg, "--root", root, "--layout", "bls", "--initramfs", "none")
    refused(run, "loader.conf", "default @saved")
    assert conf.read_text() == "timeout 3\ndefault @saved\n"
    conf.write_text("timeout 3\n")  # the fix the error names
    install_package(pkg, root, layout="bls", initramfs="none")
    assert conf.read_text().splitlines()[0] == "timeout 3" and f"default {Target.probe(root).token}-*" in (
        conf.read_text()
    )
    remove_kernel(root, GOOD)  # our line goes with the last kernel; the user's stay
    assert conf.read_text() == "timeout 3\n"


def test_the_root_given_through_a_symlink_still_works(pkg: Path, tmp_path: Path) -> None:
    real = make_root(tmp_path / "real")
    os.symlink(real, tmp_path / "via")
    install_package(pkg, tmp_path / "via", layout="bls", initramfs="none")
    consistent(real)


def test_a_first_install_refused_in_its_payload_leaves_the_root_as_it_was(pkg: Path, tmp_path: Path) -> None:
    """The payload is judged once, as it is staged: a member that does not match the
    manifest, the last one the install reads (the kernel part's last, before the
    headers), is refused there, and a root distkernel never used keeps no lock file and
    no state folder."""
    from tests.target.install.test_hostile import rebuild

    def tamper(members: list) -> None:  # type: ignore[type-arg]
        last = max(i for i, (m, _) in enumerate(members) if not m.name.startswith("headers/"))
        info, data = members[last]
        members[last] = (info, data + b"tampered")
        info.size = len(data) + len(b"tampered")

    bad = rebuild(pkg, tmp_path / "bad.tar.zst", tamper)
    root = make_root(tmp_path / "root")
    before = snapshot(root)
    refused(cli("install", bad, "--root", root, "--layout", "plain"), str(bad))
    assert snapshot(root) == before and not (root / "var").exists()
    # In a root distkernel uses, the lock stays (another command may wait on it).
    install_package(pkg, root, layout="plain")
    used = snapshot(root)
    refused(cli("install", bad, "--root", root, "--layout", "plain"), str(bad))
    assert snapshot(root) == used
