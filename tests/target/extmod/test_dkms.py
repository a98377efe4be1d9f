"""dkms.conf evaluated as dkms evaluates it: sourced by bash with dkms's variables for
the target kernel, in a clean environment, from the module's folder; shell logic runs,
so each kernel gets its own branch. Untrusted: bounded, and every path-like name checked."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from distkernel.core.errors import UserError
from distkernel.target.extmod import dkms
from tests.conftest import DATA

HEAD = 'PACKAGE_NAME=pkg\nPACKAGE_VERSION=1.0\nBUILT_MODULE_NAME[0]=pkg\nDEST_MODULE_LOCATION[0]="/extra"\n'


def context(tmp_path: Path, release: str = "6.1.0-test", config: str = "", arch: str = "x86_64") -> dkms.Context:
    headers = tmp_path / f"headers-{release}"
    headers.mkdir(parents=True, exist_ok=True)
    (headers / ".config").write_text(config)
    return dkms.Context(
        kernelver=release,
        arch=arch,
        kernel_source_dir=headers,
        dkms_tree=tmp_path / "dkms",
        source_tree=tmp_path / "src",
        install_tree=tmp_path / "lib/modules",
        module="pkg",
        module_version="1.0",
        parallel_jobs=3,
    )


def evaluate(tmp_path: Path, text: str, ctx: dkms.Context | None = None) -> dkms.DkmsConf:
    folder = tmp_path / "module"
    folder.mkdir(exist_ok=True)
    (folder / "dkms.conf").write_text(text)
    return dkms.evaluate(folder / "dkms.conf", ctx or context(tmp_path))


def test_the_test_data_dkms_conf(tmp_path: Path) -> None:
    ctx = context(tmp_path, config="CONFIG_MODULES=y\n")
    conf = dkms.evaluate(DATA / "extmod" / "dkms" / "dkms.conf", ctx)
    assert (conf.package_name, conf.package_version, conf.autoinstall, conf.exclusion) == ("dk_dkms", "1.2", True, "")
    assert conf.modules == (
        dkms.BuiltModule("dk_dkms", "src", "extra", "dk_dkms"),
        dkms.BuiltModule("dk_dkms_extra", "src", "updates/dkms", "dk_dkms_extra"),
    )
    build = ctx.dkms_tree / "dk_dkms/1.2/build"
    assert conf.make_command == f"make -j3 -C {ctx.kernel_source_dir} M={build}/src modules"
    assert conf.post_install == "post-install.sh" and conf.ignored == ()


def test_if_else_on_the_kernel_version_and_its_config_takes_one_branch(tmp_path: Path) -> None:
    # v4l2loopback's dkms.conf: before 5.18 V4L2 was CONFIG_VIDEO_V4L2, since then CONFIG_VIDEO_DEV
    text = HEAD + (
        "if [ -f $kernel_source_dir/.config ]; then\n"
        "    . $kernel_source_dir/.config\n"
        '    if ! { echo "$kernelver"; echo 5.18; } | sort -V -C; then\n'
        '        if [ "${CONFIG_VIDEO_DEV:-n}" = "n" ]; then BUILD_EXCLUSIVE_KERNEL="REQUIRES CONFIG_VIDEO_DEV"; fi\n'
        "    else\n"
        '        if [ "${CONFIG_VIDEO_V4L2:-n}" = "n" ]; then BUILD_EXCLUSIVE_KERNEL="REQUIRES CONFIG_VIDEO_V4L2"; fi\n'
        "    fi\n"
        "fi\n"
    )
    assert "REQUIRES CONFIG_VIDEO_DEV" in evaluate(tmp_path, text, context(tmp_path, "6.1.0")).exclusion
    assert evaluate(tmp_path, text, context(tmp_path, "6.1.1", "CONFIG_VIDEO_DEV=m\n")).exclusion == ""
    assert "REQUIRES CONFIG_VIDEO_V4L2" in evaluate(tmp_path, text, context(tmp_path, "5.10.0")).exclusion
    assert evaluate(tmp_path, text, context(tmp_path, "5.10.1", "CONFIG_VIDEO_V4L2=y\n")).exclusion == ""


def test_dkms_variables_are_the_target_kernels_and_nothing_else_leaks_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISTKERNEL_LEAK", "leaked")
    ctx = context(tmp_path, "6.1.9-x", arch="aarch64")
    conf = evaluate(
        tmp_path,
        HEAD + 'MAKE[0]="make K=$kernelver S=$kernel_source_dir A=$arch T=$dkms_tree '
        'N=$module V=$module_version J=$parallel_jobs W=$PWD L=${DISTKERNEL_LEAK:-none} H=${HOME:-none}"\n',
        ctx,
    )
    assert conf.make_command == (
        f"make K=6.1.9-x S={ctx.kernel_source_dir} A=aarch64 T={ctx.dkms_tree} N=pkg V=1.0 J=3 "
        f"W={tmp_path / 'module'} L=none H=none"
    )


def test_computed_arrays_and_dkms_quoting(tmp_path: Path) -> None:
    text = (
        'PACKAGE_NAME="rt"\nPACKAGE_VERSION="2"\ni=0\n'
        'for m in one two three; do BUILT_MODULE_NAME[$i]=$m; DEST_MODULE_LOCATION[$i]="/kernel/x"; i=$((i+1)); done\n'
        "BUILT_MODULE_LOCATION[2]=sub\nSTRIP[0]=no\nDEST_MODULE_NAME[1]=renamed\n"
        # dkms writes each value back inside double quotes and sources that: inner quotes go
        'MAKE[0]="make -C ${kernel_source_dir} M=${dkms_tree}/${PACKAGE_NAME}/${PACKAGE_VERSION}/build '
        'V=\\"${PACKAGE_VERSION}\\""\n'
    )
    ctx = context(tmp_path)
    conf = evaluate(tmp_path, text, ctx)
    assert [(m.name, m.location, m.dest, m.dest_name, m.strip) for m in conf.modules] == [
        ("one", "", "kernel/x", "one", False),
        ("two", "", "kernel/x", "renamed", False),  # STRIP[#] defaults to STRIP[0]
        ("three", "sub", "kernel/x", "three", False),
    ]
    assert conf.make_command == f"make -C {ctx.kernel_source_dir} M={ctx.dkms_tree}/rt/2/build V=2"
    assert not conf.default_make  # its own MAKE, even if it reads like dkms's


def test_defaults_are_dkmss(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    conf = evaluate(tmp_path, 'PACKAGE_NAME=pkg\nPACKAGE_VERSION=1.0\nDEST_MODULE_LOCATION="/updates"\n', ctx)
    assert conf.modules == (dkms.BuiltModule("pkg", "", "updates", "pkg"),)  # one module: named after the package
    assert conf.make_command == f"make -C {ctx.kernel_source_dir} M={ctx.build_dir}" and conf.default_make
    assert not conf.autoinstall and conf.patches == () and conf.build_depends == ()


def test_make_match_and_patch_match_pick_per_kernel(tmp_path: Path) -> None:
    text = HEAD + (
        'MAKE[0]="make old"\nMAKE[1]="make new"\nMAKE_MATCH[1]="^6\\."\n'
        'PATCH[0]="all.patch"\nPATCH[1]="five.patch"\nPATCH_MATCH[1]="^5"\n'
    )
    old = evaluate(tmp_path, text, context(tmp_path, "5.15.0"))
    new = evaluate(tmp_path, text, context(tmp_path, "6.1.0"))
    assert (old.make_command, old.patches) == ("make old", ("all.patch", "five.patch"))
    assert (new.make_command, new.patches) == ("make new", ("all.patch",))


@pytest.mark.parametrize(
    ("rules", "release", "config", "why"),
    [
        ('BUILD_EXCLUSIVE_KERNEL="^6\\."', "5.10.0", "", 'BUILD_EXCLUSIVE_KERNEL="^6\\." does not match 5.10.0'),
        ('BUILD_EXCLUSIVE_KERNEL_MIN="6.2"', "6.1.9", "", 'BUILD_EXCLUSIVE_KERNEL_MIN="6.2": 6.1.9 is older'),
        ('BUILD_EXCLUSIVE_KERNEL_MAX="6.1.5"', "6.1.10", "", 'BUILD_EXCLUSIVE_KERNEL_MAX="6.1.5": 6.1.10 is newer'),
        ('BUILD_EXCLUSIVE_ARCH="aarch64"', "6.1.0", "", 'BUILD_EXCLUSIVE_ARCH="aarch64" does not match x86_64'),
        ('BUILD_EXCLUSIVE_CONFIG="CONFIG_A !CONFIG_B"', "6.1.0", "CONFIG_B=y\n", "the kernel lacks CONFIG_A"),
        ('BUILD_EXCLUSIVE_CONFIG="CONFIG_A !CONFIG_B"', "6.1.0", "CONFIG_A=m\nCONFIG_B=y\n", "the kernel has CONFIG_B"),
        ('BUILD_EXCLUSIVE_CONFIG="CONFIG_A !CONFIG_B"', "6.1.0", "CONFIG_A=m\n# CONFIG_B is not set\n", ""),
        ('BUILD_EXCLUSIVE_KERNEL_MIN="6.1"\nBUILD_EXCLUSIVE_KERNEL_MAX="6.1.99"', "6.1.10", "", ""),
    ],
)
def test_build_exclusive_rules_name_the_rule(tmp_path: Path, rules: str, release: str, config: str, why: str) -> None:
    conf = evaluate(tmp_path, HEAD + rules + "\n", context(tmp_path, release, config))
    assert conf.exclusion.endswith(why) if why else conf.exclusion == ""


@pytest.mark.parametrize(
    ("line", "refusal"),
    [
        ("BUILT_MODULE_NAME[0]=../evil", "is not a plain module name"),
        ("BUILT_MODULE_NAME[0]=a/b", "is not a plain module name"),
        ("BUILT_MODULE_NAME[0]=pkg.ko", "ends in .o or .ko"),
        ("DEST_MODULE_NAME[0]=x/y", "is not a plain module name"),
        ('DEST_MODULE_LOCATION[0]="/opt/x"', "must be under /kernel, /updates or /extra"),
        ('DEST_MODULE_LOCATION[0]="/kernel/../../etc"', "must be under /kernel, /updates or /extra"),
        ("BUILT_MODULE_LOCATION[0]=../up", "leaves the build folder"),
        ("BUILT_MODULE_LOCATION[0]=/abs", "leaves the build folder"),
        ("PATCH[0]=../../x.patch", "is not a file under patches/"),
        ('PRE_BUILD="../../bin/sh -c x"', "is not a script inside the module's folder"),
        ('BUILD_DEPENDS="a/b"', "is not a module name"),
        ("AUTOINSTALL=maybe", "AUTOINSTALL 'maybe' is not yes or no"),
        ("BUILT_MODULE_NAME[1]=second", "no DEST_MODULE_LOCATION[1]"),
    ],
)
def test_names_that_become_paths_are_refused(tmp_path: Path, line: str, refusal: str) -> None:
    with pytest.raises(UserError, match=r"fix the dkms\.conf") as e:
        evaluate(tmp_path, HEAD + line + "\n")
    assert refusal in e.value.message and "dkms.conf" in e.value.message


def test_yes_no_values_as_dkms_reads_them(tmp_path: Path) -> None:
    for value, expected in (("yes", True), ("YES", True), ("no", False), ('""', False)):
        assert evaluate(tmp_path, HEAD + f"AUTOINSTALL={value}\nREMAKE_INITRD={value}\n").autoinstall is expected


def test_what_distkernel_does_not_run_is_listed(tmp_path: Path) -> None:
    conf = evaluate(tmp_path, HEAD + 'PRE_INSTALL="x.sh"\nOBSOLETE_BY=5.0\nPOST_BUILD="done.sh"\n')
    assert conf.ignored == (
        "PRE_INSTALL (a script dkms runs before installing: not run)",
        "OBSOLETE_BY (not supported (use BUILD_EXCLUSIVE_KERNEL_MAX))",
    )
    assert conf.post_build == "done.sh"


def test_bad_shell_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"dkms.conf:2: unexpected EOF .*\(PACKAGE_VERSION is not set\); add it"):
        evaluate(tmp_path, 'PACKAGE_NAME=a\nPACKAGE_VERSION="1\n')


def test_an_untrusted_conf_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    big = tmp_path / "big"
    big.mkdir()
    (big / "dkms.conf").write_text(HEAD + "#" * dkms.MAX_CONF_BYTES)
    with pytest.raises(UserError, match="bytes, over the"):
        dkms.evaluate(big / "dkms.conf", context(tmp_path))
    with pytest.raises(UserError, match="could not be evaluated"):  # its answer would exceed OUTPUT_KIB
        evaluate(tmp_path, HEAD + 's=$(printf "%04000d" 0)\nfor i in $(seq 1500); do PATCH[$i]=$s; done\n')
    monkeypatch.setattr(dkms, "EVAL_SECONDS", 1)
    with pytest.raises(UserError, match="did not finish within 1 s"):
        evaluate(tmp_path, HEAD + "sleep 100\n")


def test_it_runs_from_the_module_folder_and_cannot_reach_the_callers(tmp_path: Path) -> None:
    conf = evaluate(tmp_path, HEAD + 'MAKE[0]="make $(pwd) $(cat ./data.txt 2>/dev/null || echo none)"\n')
    assert conf.make_command == f"make {tmp_path / 'module'} none"
    (tmp_path / "module" / "data.txt").write_text("here")
    assert evaluate(tmp_path, HEAD + 'MAKE[0]="make $(cat ./data.txt)"\n').make_command == "make here"
    assert os.getcwd() != str(tmp_path / "module")


def test_running_distribution_is_the_roots(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/os-release").write_text('ID=raspbian\nID_LIKE="debian"\n')
    assert dkms.running_distribution(tmp_path) == "debian"
    assert dkms.running_distribution(tmp_path / "none") == ""
