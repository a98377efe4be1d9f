"""dkms.conf read as data: assignments, quoting, variables, and what is ignored."""

from __future__ import annotations

from pathlib import Path

import pytest

from distkernel.core.errors import UserError
from distkernel.target.extmod import dkms
from tests.conftest import DATA


def test_the_test_data_dkms_conf() -> None:
    conf = dkms.parse(DATA / "extmod" / "dkms" / "dkms.conf")
    assert (conf.package_name, conf.package_version, conf.autoinstall) == ("dk_dkms", "1.2", True)
    assert conf.modules == (
        dkms.BuiltModule("dk_dkms", "src", "extra", "dk_dkms"),
        dkms.BuiltModule("dk_dkms_extra", "src", "updates/dkms", "dk_dkms_extra"),
    )
    assert conf.exclusive_config == ("CONFIG_MODULES", "!CONFIG_DISTKERNEL_NEVER_SET")
    assert conf.ignored == ("CLEAN (every build starts from a fresh copy)", "POST_INSTALL (a script: not run)")


def test_quoting_variables_and_continuations() -> None:
    conf = dkms.parse_text(
        "PACKAGE_NAME=foo  # trailing comment\n"
        "PACKAGE_VERSION='2.0'\n"
        'BUILT_MODULE_NAME[0]="$PACKAGE_NAME"\n'
        "BUILT_MODULE_LOCATION[0]='lit$eral/'\n"
        'MAKE[0]="make -C $kernel_source_dir \\\n'
        '  KVER=${kernelver}"\n'
        "AUTOINSTALL=no\n"
    )
    assert conf.modules == (dkms.BuiltModule("foo", "lit$$eral", "", "foo"),)  # templates: $$ is a literal $
    assert dkms.expand(conf.modules[0].location, {"eral": "x"}) == "lit$eral"
    command = dkms.make_command(conf, "6.1.0")
    assert command is not None
    assert dkms.expand(command, {"kernel_source_dir": "/h", "kernelver": "6.1.0"}) == "make -C /h   KVER=6.1.0"
    assert conf.autoinstall is False and conf.ignored == ()


def test_shell_code_is_listed_not_run(tmp_path: Path) -> None:
    witness = tmp_path / "ran"
    conf = dkms.parse_text(
        "PACKAGE_NAME=foo\nPACKAGE_VERSION=1\n"
        f"touch {witness}\n"
        'if [ "$kernelver" = x ]; then\n'
        "  BUILT_MODULE_NAME[0]=foo\n"
        "fi\n"
        'PACKAGE_VERSION_EXTRA="$(touch ' + str(witness) + ')"\n'
        'MAKE[0]="make `id`"\n'
        "OBSOLETE_BY=2\n"
    )
    assert not witness.exists()
    assert conf.ignored == (
        "line 3: shell code is not run",
        "line 4: shell code is not run",
        "line 6: shell code is not run",
        "PACKAGE_VERSION_EXTRA (command substitution is not run)",
        "MAKE[0] (command substitution is not run)",
        "OBSOLETE_BY",
    )
    assert conf.make == () and [m.name for m in conf.modules] == ["foo"]


def test_make_match_picks_the_command_per_kernel() -> None:
    conf = dkms.parse_text(
        'PACKAGE_NAME=a\nPACKAGE_VERSION=1\nMAKE[0]="make old"\nMAKE[1]="make new"\nMAKE_MATCH[1]="^6\\."\n'
    )
    assert dkms.make_command(conf, "5.15.0") == "make old"
    assert dkms.make_command(conf, "6.1.0") == "make new"


def test_build_exclusive_rules() -> None:
    conf = dkms.parse_text(
        "PACKAGE_NAME=a\nPACKAGE_VERSION=1\n"
        'BUILD_EXCLUSIVE_KERNEL="^6\\."\nBUILD_EXCLUSIVE_ARCH="x86_64"\nBUILD_EXCLUSIVE_CONFIG="CONFIG_A !CONFIG_B"\n'
    )
    good = {"CONFIG_A": "m", "CONFIG_B": "n"}
    assert dkms.exclusion(conf, "6.1.0", "x86_64", good) == ""
    assert "BUILD_EXCLUSIVE_KERNEL" in dkms.exclusion(conf, "5.10.0", "x86_64", good)
    assert "BUILD_EXCLUSIVE_ARCH" in dkms.exclusion(conf, "6.1.0", "aarch64", good)
    assert "needs CONFIG_A" in dkms.exclusion(conf, "6.1.0", "x86_64", {})
    assert "needs !CONFIG_B" in dkms.exclusion(conf, "6.1.0", "x86_64", {"CONFIG_A": "y", "CONFIG_B": "y"})


def test_bad_input_is_one_clear_error() -> None:
    with pytest.raises(UserError, match=r"dkms.conf:2: PACKAGE_VERSION: unterminated"):
        dkms.parse_text('PACKAGE_NAME=a\nPACKAGE_VERSION="1\n')
    with pytest.raises(UserError, match="leaves the module tree"):
        dkms.parse_text(
            "PACKAGE_NAME=a\nPACKAGE_VERSION=1\nBUILT_MODULE_NAME[0]=a\nDEST_MODULE_LOCATION[0]=/../../etc\n"
        )
