"""dkms modules built as dkms builds them, against the fake headers tree: a fresh copy
with cwd and PWD set to it, the MAKE line through bash with KERNELRELEASE, PATCH,
PRE_BUILD/POST_BUILD, STRIP, BUILD_DEPENDS, groups only where dkms semantics allow, and
the first real error as the reason. Real Debian packages are in test_debian_packages.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from distkernel.build.compile.kbuild import first_error
from distkernel.core.errors import UserError
from distkernel.target.extmod import builder, dkms, registry, steps
from distkernel.target.extmod.builder import Job
from distkernel.target.extmod.kernel import Kernel
from tests.target.extmod.conftest import fake_module

RELEASE = "6.1.0-test"


def kernel(root: Path, headers: Path) -> Kernel:
    moddir = root / "lib" / "modules" / RELEASE
    moddir.mkdir(parents=True, exist_ok=True)
    return Kernel.from_headers(RELEASE, headers, moddir)


def dkms_module(parent: Path, name: str, extra: str = "", **files: str) -> Path:
    src = fake_module(parent, name, **files)
    (src / "dkms.conf").write_text(
        f'PACKAGE_NAME={name}\nPACKAGE_VERSION=1\nBUILT_MODULE_NAME[0]={name}\nDEST_MODULE_LOCATION[0]="/extra"\n'
        "AUTOINSTALL=yes\n" + extra
    )
    return src


def test_make_runs_in_the_build_copy_with_pwd_and_kernelrelease(tmp_path: Path, fake_headers: Path) -> None:
    record = tmp_path / "record"
    makefile = (
        "all:\n"
        '\techo "PWD=$(PWD) CURDIR=$(CURDIR) KERNELRELEASE=$(KERNELRELEASE)" > $(OUT)\n'
        "\t$(MAKE) -C $(KDIR) M=$(PWD) modules\n"
    )
    src = dkms_module(tmp_path, "pw", f'MAKE[0]="make all KDIR=$kernel_source_dir OUT={record}"\n', Makefile=makefile)
    root = tmp_path / "root"
    k = kernel(root, fake_headers)
    [o] = builder.build_all(root, [Job(registry.add(root, src), k)])
    assert o.ok and o.files == ("extra/pw.ko",), o.reason
    build = root / builder.WORK / RELEASE / "pw" / "dkms" / "pw" / "1" / "build"
    assert record.read_text().split() == [f"PWD={build}", f"CURDIR={build}", f"KERNELRELEASE={RELEASE}"]


def test_a_rebuild_from_inside_the_registered_source_writes_nothing_there(
    tmp_path: Path, fake_headers: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    makefile = "all:\n\t$(MAKE) -C $(KDIR) M=$(PWD) modules\n"
    src = dkms_module(tmp_path, "inside", 'MAKE[0]="make KDIR=$kernel_source_dir"\n', Makefile=makefile)
    root = tmp_path / "root"
    mod = registry.add(root, src)
    registered = mod.source_dir(root)
    before = sorted(p.name for p in registered.iterdir())
    monkeypatch.chdir(registered)
    monkeypatch.setenv("PWD", str(registered))
    [o] = builder.build_all(root, [Job(mod, kernel(root, fake_headers))])
    assert o.ok, o.reason
    assert sorted(p.name for p in registered.iterdir()) == before  # no .ko, no .o
    assert registry.tree_sha256(registered) == mod.source_sha256


def test_patch_pre_build_post_build_and_strip(tmp_path: Path, fake_headers: Path) -> None:
    witness = tmp_path / "post-build-ran"
    src = dkms_module(
        tmp_path,
        "steps",
        'PATCH[0]="fix.patch"\nPRE_BUILD="gen.sh $kernelver"\n'
        f'POST_BUILD="done.sh {witness}"\nSTRIP[0]=no\n'
        # a MAKE line that is no make at all: the compiler, with debug info
        'MAKE[0]="gcc -g -c -o steps.ko steps.c"\n',
        **{
            "steps.c": '#include "gen.h"\nint steps_value = BROKEN;\n',
            "gen.sh": '#!/bin/sh\necho "#define GENERATED \\"$1\\"" > gen.h\n',
            "done.sh": '#!/bin/sh\ntouch "$1"\n',
        },
    )
    (src / "patches").mkdir()
    (src / "patches/fix.patch").write_text(
        '--- a/steps.c\n+++ b/steps.c\n@@ -1,2 +1,2 @@\n #include "gen.h"\n'
        "-int steps_value = BROKEN;\n+const char *steps_value = GENERATED;\n"
    )
    for script in ("gen.sh", "done.sh"):
        (src / script).chmod(0o755)
    root = tmp_path / "root"
    k = kernel(root, fake_headers)
    [o] = builder.build_all(root, [Job(registry.add(root, src), k)])
    assert o.ok, o.reason
    ko = k.modules_dir / "extra/steps.ko"
    assert RELEASE.encode() in ko.read_bytes() and b".debug_info" in ko.read_bytes()  # STRIP[0]=no
    assert witness.exists()
    (src / "dkms.conf").write_text((src / "dkms.conf").read_text().replace("STRIP[0]=no\n", ""))
    [o] = builder.build_all(root, [Job(registry.add(root, src), k)])
    assert o.ok and b".debug_info" not in ko.read_bytes()
    (src / "patches/fix.patch").write_text("--- a/steps.c\n+++ b/steps.c\n@@ -1 +1 @@\n-nothing\n+here\n")
    [o] = builder.build_all(root, [Job(registry.add(root, src), k)])
    assert not o.ok and o.reason.startswith("PATCH fix.patch did not apply")


def test_build_depends_orders_the_builds_and_fails_without_them(tmp_path: Path, fake_headers: Path) -> None:
    root = tmp_path / "root"
    k = kernel(root, fake_headers)
    # "top" can only build once "base" is installed for the kernel
    check = 'MAKE[0]="test -e $install_tree/$kernelver/extra/base.ko && make -C $kernel_source_dir M=$PWD"\n'
    top = registry.add(root, dkms_module(tmp_path, "top", 'BUILD_DEPENDS="base"\n' + check))
    base = registry.add(root, dkms_module(tmp_path, "base"))
    outcomes = builder.build_all(root, [Job(top, k), Job(base, k)])
    assert [(o.name, o.status) for o in outcomes] == [("top", "built"), ("base", "built")], outcomes[0].reason
    (tmp_path / "base/base.c").write_text("not C\n")
    registry.add(root, tmp_path / "base")
    outcomes = builder.build_all(root, [Job(top, k), Job(base, k)])
    assert [o.status for o in outcomes] == ["failed", "failed"]
    assert outcomes[0].reason.startswith(f"BUILD_DEPENDS base is not built for {RELEASE} (failed)")
    lone = registry.add(root, dkms_module(tmp_path, "lone", 'BUILD_DEPENDS="ghost"\n'))
    [o] = builder.build_all(root, [Job(lone, k)])
    assert o.reason == "BUILD_DEPENDS ghost is not registered; add it with `distkernel modules add`"
    a = registry.add(root, dkms_module(tmp_path, "ca", 'BUILD_DEPENDS="cb"\n'))
    b = registry.add(root, dkms_module(tmp_path, "cb", 'BUILD_DEPENDS="ca"\n'))
    assert {o.reason for o in builder.build_all(root, [Job(a, k), Job(b, k)])} == {
        "BUILD_DEPENDS form a cycle: ca -> cb -> ca",
        "BUILD_DEPENDS form a cycle: cb -> ca -> cb",
    }


def test_only_modules_free_of_their_folder_share_a_make(tmp_path: Path, fake_headers: Path) -> None:
    root = tmp_path / "root"
    k = kernel(root, fake_headers)
    mods = [
        registry.add(root, fake_module(tmp_path, "plain")),
        registry.add(root, dkms_module(tmp_path, "dkdefault")),  # dkms's own MAKE: plain Kbuild
        registry.add(root, fake_module(tmp_path, "pwd", **{"Kbuild": "obj-m := pwd.o\nccflags-y := -I$(PWD)\n"})),
        registry.add(root, dkms_module(tmp_path, "ownmake", 'MAKE[0]="make -C $kernel_source_dir M=$PWD W=1"\n')),
    ]
    jobs = [Job(m, k) for m in mods]
    assert builder.plan(root, jobs, [builder_conf(root, m, k) for m in mods]) == [[0, 1], [2], [3]]
    outcomes = builder.build_all(root, jobs)
    assert all(o.ok for o in outcomes), [o.reason for o in outcomes]
    logs = [o.log.read_text() if o.log else "" for o in outcomes]
    assert ["built in one make with: plain, dkdefault" in log for log in logs] == [True, True, False, False]


def builder_conf(root: Path, module: registry.Registered, k: Kernel) -> dkms.DkmsConf | None:
    if module.kind != "dkms":
        return None
    return steps.evaluate(root, module, steps.context(root, root / builder.WORK, module, k, 1))


def test_the_reason_is_the_first_real_error(tmp_path: Path, fake_headers: Path) -> None:
    makefile = (
        "all:\n"
        "\t@echo '  gcc -Wp,-MMD -Werror=implicit-function-declaration -Werror=strict-prototypes -c -o x.o x.c'\n"
        "\t@echo \"$(CURDIR)/x.c:3:5: error: 'y' undeclared (first use in this function)\"\n"
        "\t@echo 'make[2]: *** [scripts/Makefile.build:250: x.o] Error 1'\n"
        "\t@false\n"
    )
    src = dkms_module(tmp_path, "werr", 'MAKE[0]="make V=1"\n', Makefile=makefile)
    root = tmp_path / "root"
    [o] = builder.build_all(root, [Job(registry.add(root, src), kernel(root, fake_headers))])
    assert o.reason == "x.c:3:5: error: 'y' undeclared (first use in this function)"
    assert first_error('ERROR: modpost: "dm_put_device" [/b/dm.ko] undefined!\nmake: *** [x] Error 2') == (
        'ERROR: modpost: "dm_put_device" [/b/dm.ko] undefined!'
    )
    assert first_error("make: *** /lib/modules/6.1/build: No such file or directory.  Stop.").startswith("make: ***")
    assert first_error("  gcc -Werror=foo -c x.c\nmake: *** [all] Error 1") == ""


def test_a_damaged_status_stops_the_run_before_any_build(tmp_path: Path, fake_headers: Path) -> None:
    root = tmp_path / "root"
    k = kernel(root, fake_headers)
    good, other = registry.add(root, fake_module(tmp_path, "good")), registry.add(root, fake_module(tmp_path, "other"))
    builder.build_all(root, [Job(good, k), Job(other, k)])
    registry.status_path(root, "other", "5.0.0-old").write_text("{")  # another kernel's, damaged
    (k.modules_dir / "updates/good.ko").unlink()
    with pytest.raises(UserError, match=r"other/kernels/5.0.0-old.json: damaged module build status"):
        builder.build_all(root, [Job(good, k), Job(other, k)])
    assert not (k.modules_dir / "updates/good.ko").exists()  # nothing was built


def test_post_install_is_not_run_for_another_root(tmp_path: Path, fake_headers: Path) -> None:
    witness = tmp_path / "post-install-ran"
    src = dkms_module(tmp_path, "pi", f'POST_INSTALL="inst.sh {witness}"\n', **{"inst.sh": '#!/bin/sh\ntouch "$1"\n'})
    (src / "inst.sh").chmod(0o755)
    root = tmp_path / "root"
    mod = registry.add(root, src)
    assert mod.ignored == ("POST_INSTALL (not run: the root is not this machine)",)
    [o] = builder.build_all(root, [Job(mod, kernel(root, fake_headers))])
    assert o.ok and not witness.exists()
    assert o.log is not None and "POST_INSTALL 'inst.sh" in o.log.read_text()


def test_make_clients_share_the_jobserver_even_through_bash(tmp_path: Path, fake_headers: Path) -> None:
    """-jN in a MAKE line is dropped by dkms's make as we run it; -j1 (a serial build) stays."""
    src = dkms_module(tmp_path, "serial", 'MAKE[0]="make -j1 -C $kernel_source_dir M=$PWD"\n')
    root = tmp_path / "root"
    [o] = builder.build_all(root, [Job(registry.add(root, src), kernel(root, fake_headers))], cores=2)
    assert o.ok and o.log is not None
    assert any(line.startswith("$ make ") and " -j1 -C " in line for line in o.log.read_text().splitlines())
