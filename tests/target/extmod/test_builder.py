"""Builds against a fake headers tree: install paths, failures kept apart, the shared
jobserver, dkms rules, conflicts. Real-kernel builds are in test_real_builds.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from distkernel.target.extmod import builder, for_kernel, registry
from distkernel.target.extmod.builder import Job
from distkernel.target.extmod.kernel import Kernel
from tests.target.extmod.conftest import fake_module

RELEASE = "6.1.0-test"


def kernel(root: Path, headers: Path) -> Kernel:
    moddir = root / "lib" / "modules" / RELEASE
    moddir.mkdir(parents=True, exist_ok=True)
    return Kernel.from_headers(RELEASE, headers, moddir)


def test_good_modules_install_and_a_broken_one_only_reports(tmp_path: Path, fake_headers: Path) -> None:
    root = tmp_path / "root"
    registry.add(root, fake_module(tmp_path, "good"), initramfs=True)
    registry.add(root, fake_module(tmp_path, "bad", body="this is not C\n"), required=True)
    moddir = kernel(root, fake_headers).modules_dir
    outcomes = {o.name: o for o in for_kernel.build_for_kernel(root, RELEASE, fake_headers, moddir)}
    good, bad = outcomes["good"], outcomes["bad"]
    assert (good.ok, good.status, good.files, good.in_initramfs) == (True, "built", ("updates/good.ko",), ("good",))
    assert (moddir / "updates/good.ko").is_file()
    assert (bad.ok, bad.status, bad.files, bad.in_initramfs) == (False, "failed", (), ())
    assert "bad.c:1" in bad.reason and "error" in bad.reason and str(tmp_path / "root/var/cache") not in bad.reason
    assert bad.log is not None and "this is not C" in bad.log.read_text()
    assert for_kernel.blocks_default(list(outcomes.values()))
    assert for_kernel.initramfs_modules(root, RELEASE) == ("good",)
    assert registry.load_status(root, "bad", RELEASE).status == "failed"  # type: ignore[union-attr]
    assert not (root / builder.WORK).exists() or not any((root / builder.WORK).iterdir())  # no build copies left


def test_a_rebuild_replaces_the_files_of_the_previous_one(tmp_path: Path, fake_headers: Path) -> None:
    root, src = tmp_path / "root", fake_module(tmp_path, "one")
    k = kernel(root, fake_headers)
    builder.build_all(root, [Job(registry.add(root, src), k)])
    (src / "one.c").rename(src / "two.c")
    [outcome] = builder.build_all(root, [Job(registry.add(root, src), k)])
    assert outcome.files == ("updates/two.ko",)
    assert sorted(p.name for p in (k.modules_dir / "updates").iterdir()) == ["two.ko"]
    (src / "two.c").write_text("broken\n")
    [failed] = builder.build_all(root, [Job(registry.add(root, src), k)])
    assert not failed.ok and failed.files == ("updates/two.ko",) and "(previous build kept)" in failed.reason


def test_all_builds_share_one_jobserver(tmp_path: Path, fake_headers: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trace = tmp_path / "trace"
    monkeypatch.setenv("TRACE", str(trace))
    root = tmp_path / "root"
    k = kernel(root, fake_headers)
    extra = {f"part{i}.c": f"int part{i};\n" for i in range(3)}
    mods = [
        registry.add(root, fake_module(tmp_path, f"m{n}", **{f"m{n}_{k}": v for k, v in extra.items()}))
        for n in range(3)
    ]
    for cores in (1, 2, 3):
        trace.unlink(missing_ok=True)
        outcomes = builder.build_all(root, [Job(m, k) for m in mods], cores=cores)
        assert all(o.ok for o in outcomes)
        running = peak = 0
        for line in trace.read_text().splitlines():
            running += 1 if line.startswith("+") else -1
            peak = max(peak, running)
        assert peak == cores  # never more than the cores given, and all of them used


def test_two_modules_never_install_the_same_file(tmp_path: Path, fake_headers: Path) -> None:
    root, k = tmp_path / "root", kernel(tmp_path / "root", fake_headers)
    first = registry.add(root, fake_module(tmp_path / "a", "same"), name="first")
    second = registry.add(root, fake_module(tmp_path / "b", "same"), name="second")
    outcomes = builder.build_all(root, [Job(first, k), Job(second, k)])
    assert sorted(o.ok for o in outcomes) == [False, True]
    [loser] = [o for o in outcomes if not o.ok]
    assert "updates/same.ko is already installed by module" in loser.reason


def test_dkms_rules_autoinstall_exclusive_and_make(tmp_path: Path, fake_headers: Path) -> None:
    src = fake_module(tmp_path, "dk")
    root, k = tmp_path / "root", kernel(tmp_path / "root", fake_headers)
    conf = 'PACKAGE_NAME=dk\nPACKAGE_VERSION=1\nBUILT_MODULE_NAME[0]=dk\nDEST_MODULE_LOCATION[0]="/kernel/extra"\n'
    (src / "dkms.conf").write_text(conf)
    mod = registry.add(root, src)
    [skipped] = for_kernel.build_for_kernel(root, RELEASE, fake_headers, k.modules_dir)
    assert skipped.ok and skipped.status == "skipped" and "AUTOINSTALL" in skipped.reason
    [built] = builder.build_all(root, [Job(mod, k, explicit=True)])
    assert built.files == ("kernel/extra/dk.ko",)
    (src / "dkms.conf").write_text(conf + 'AUTOINSTALL=yes\nBUILD_EXCLUSIVE_CONFIG="CONFIG_NOT_THERE"\n')
    registry.add(root, src)
    [excluded] = for_kernel.build_for_kernel(root, RELEASE, fake_headers, k.modules_dir)
    assert (excluded.ok, excluded.status, excluded.files) == (True, "excluded", ())
    assert excluded.reason == 'BUILD_EXCLUSIVE_CONFIG="CONFIG_NOT_THERE": the kernel lacks CONFIG_NOT_THERE'
    assert not (k.modules_dir / "kernel/extra/dk.ko").exists()  # the previous build goes
    witness = tmp_path / "ran-through-bash"
    (src / "dkms.conf").write_text(
        conf + f'AUTOINSTALL=yes\nMAKE[0]="make -C $kernel_source_dir M=$PWD && touch {witness}"\n'
    )
    registry.add(root, src)
    [ran] = for_kernel.build_for_kernel(root, RELEASE, fake_headers, k.modules_dir)
    assert ran.ok and witness.exists(), ran.reason  # the MAKE line is shell, as dkms runs it
    (src / "dkms.conf").write_text(
        conf + 'AUTOINSTALL=yes\nMAKE[0]="make -j9 -C $kernel_source_dir -j 7 M=$dkms_tree/dk/1/build"\n'
    )
    registry.add(root, src)
    [ran] = for_kernel.build_for_kernel(root, RELEASE, fake_headers, k.modules_dir)
    assert ran.ok, ran.reason
    assert ran.log is not None
    started = [line for line in ran.log.read_text().splitlines() if line.startswith("$ make ")]
    assert started and not any("-j9" in line or " 7 " in line for line in started)  # the jobserver decides


def test_kernel_that_signs_without_a_key_gives_unsigned(tmp_path: Path, fake_headers: Path) -> None:
    (fake_headers / ".config").write_text("CONFIG_MODULES=y\nCONFIG_MODULE_SIG=y\n")
    root = tmp_path / "root"
    registry.add(root, fake_module(tmp_path, "foo"))
    [o] = for_kernel.build_for_kernel(root, RELEASE, fake_headers, kernel(root, fake_headers).modules_dir)
    assert (o.ok, o.signed) == (True, "unsigned")


def test_missing_headers_fail_the_module_not_the_caller(tmp_path: Path) -> None:
    root = tmp_path / "root"
    registry.add(root, fake_module(tmp_path, "foo"))
    [o] = for_kernel.build_for_kernel(root, RELEASE, tmp_path / "nothing", root / "lib/modules" / RELEASE)
    assert not o.ok and "no headers tree" in o.reason
    assert os.path.exists(o.log or "")


def test_kbuild_modules_of_a_kernel_build_in_groups_and_a_failing_group_splits(
    tmp_path: Path, fake_headers: Path
) -> None:
    root, k = tmp_path / "root", kernel(tmp_path / "root", fake_headers)
    mods = [registry.add(root, fake_module(tmp_path, name)) for name in ("a", "b", "c")]
    assert builder.plan(root, [Job(m, k) for m in mods]) == [[0, 1, 2]]
    outcomes = builder.build_all(root, [Job(m, k) for m in mods], cores=1)
    assert [o.files for o in outcomes] == [("updates/a.ko",), ("updates/b.ko",), ("updates/c.ko",)]
    assert all("# built in one make with: a, b, c" in o.log.read_text() for o in outcomes if o.log)
    bad = registry.add(root, fake_module(tmp_path, "bad", body="not C\n"))
    outcomes = builder.build_all(root, [Job(m, k) for m in [*mods, bad]], cores=1)
    assert [o.ok for o in outcomes] == [True, True, True, False]
    assert all(o.log and "built in one make" not in o.log.read_text() for o in outcomes)  # each built alone
    assert builder.plan(root, [Job(m, k) for m in [*mods, bad]]) == [[0, 1, 2], [3]]  # known broken: alone
