"""A headers tree's host tools serve the machine that builds the module: a tool built for
another machine (here a real arm64 ELF, Debian's arm64 busybox, put in place of the
tool in an installed arm64 package's headers) is rebuilt with this machine's compiler
from the sources the tree ships, and the external module still builds; tools of this
machine are left as they are; a foreign tool the tree has no sources for is refused."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from distkernel.core.errors import ToolError
from distkernel.target.extmod import hosttools
from tests.arches.boots import arch_root
from tests.conftest import DATA, Built, cli

EM_AARCH64 = 183


def installed_headers(built: Built, root: Path) -> Path:
    run = cli("install", built.package, "--root", root, "--layout", "plain", "--with-headers", "--json")
    assert run.code == 0, run.err
    return Path(run.json()["headers_dir"])


def module_log(root: Path) -> str:
    return "".join(p.read_text() for p in (root / "var/lib/distkernel/modules/dk_dkms/logs").iterdir())


@pytest.mark.kernel
def test_foreign_fixdep_and_modpost_are_rebuilt_and_the_module_builds(arm64_package: Built, tmp_path: Path) -> None:
    root = arch_root(tmp_path / "root", "arm64")
    headers = installed_headers(arm64_package, root)
    for tool in ("scripts/basic/fixdep", "scripts/mod/modpost"):
        shutil.copyfile(root / "bin" / "busybox", headers / tool)  # an arm64 executable
        assert hosttools.elf_machine(headers / tool) == (2, EM_AARCH64)
    elfconfig = headers / "scripts/mod/elfconfig.h"  # as a big-endian build server would leave it
    elfconfig.write_text(elfconfig.read_text().replace("HOST_ELFDATA ELFDATA2LSB", "HOST_ELFDATA ELFDATA2MSB"))
    run = cli("modules", "add", DATA / "extmod" / "dkms", "--root", root)
    assert run.code == 0, run.err
    for tool in ("scripts/basic/fixdep", "scripts/mod/modpost"):
        assert hosttools.elf_machine(headers / tool) == hosttools.this_machine()
        assert f"{tool}: built for ELF machine {EM_AARCH64}" in module_log(root)
    assert "HOST_ELFDATA ELFDATA2LSB" in elfconfig.read_text()
    built = sorted(root.rglob("dk_dkms.ko*"))
    assert built and built[0].read_bytes()[18:20] == EM_AARCH64.to_bytes(2, "little")


@pytest.mark.kernel
def test_host_tools_of_this_machine_are_left_alone(arm64_package: Built, tmp_path: Path) -> None:
    root = arch_root(tmp_path / "root", "arm64")
    headers = installed_headers(arm64_package, root)
    tools = [headers / "scripts/basic/fixdep", headers / "scripts/mod/modpost"]
    before = [(t.stat().st_ino, t.stat().st_mtime_ns, t.read_bytes()) for t in tools]
    run = cli("modules", "add", DATA / "extmod" / "dkms", "--root", root)
    assert run.code == 0, run.err
    assert [(t.stat().st_ino, t.stat().st_mtime_ns, t.read_bytes()) for t in tools] == before
    assert "rebuilding it" not in module_log(root)


def test_a_foreign_tool_without_its_sources_is_refused(tmp_path: Path) -> None:
    root = arch_root(tmp_path / "root", "arm64")
    objtool = tmp_path / "headers" / "tools" / "objtool" / "objtool"
    objtool.parent.mkdir(parents=True)
    shutil.copyfile(root / "bin" / "busybox", objtool)
    with pytest.raises(ToolError) as e:
        hosttools.ensure(tmp_path / "headers", tmp_path / "log")
    assert "cannot run on this machine and cannot be rebuilt: its sources are not in the headers" in str(e.value)


def test_a_foreign_fixdep_whose_source_is_missing_is_refused(tmp_path: Path) -> None:
    root = arch_root(tmp_path / "root", "arm64")
    fixdep = tmp_path / "headers" / "scripts" / "basic" / "fixdep"
    fixdep.parent.mkdir(parents=True)
    shutil.copyfile(root / "bin" / "busybox", fixdep)
    with pytest.raises(ToolError) as e:
        hosttools.ensure(tmp_path / "headers", tmp_path / "log")
    assert "scripts/basic/fixdep.c not in the headers" in str(e.value)


def test_a_tool_of_this_machine_that_cannot_start_is_rebuilt(tmp_path: Path) -> None:
    """Same ELF machine, but its program interpreter is not on this machine (a build
    server of another C library): rebuilt too."""
    fixdep = tmp_path / "headers" / "scripts" / "basic" / "fixdep"
    fixdep.parent.mkdir(parents=True)
    true = Path(shutil.which("true") or "/bin/true").resolve().read_bytes()
    interp = next(p for p in (b"/lib64/ld-linux-x86-64.so.2", b"/lib/ld-linux-aarch64.so.1") if p in true)
    fixdep.write_bytes(true.replace(interp, interp.replace(b"ld-", b"xx-")))
    fixdep.chmod(0o755)
    (fixdep.parent / "fixdep.c").write_text("int main(void) { return 0; }\n")
    assert hosttools.elf_machine(fixdep) == hosttools.this_machine()
    assert hosttools.why_rebuild(fixdep).startswith("it cannot start here")
    assert hosttools.ensure(tmp_path / "headers", tmp_path / "log") == ("scripts/basic/fixdep",)
    assert hosttools.why_rebuild(fixdep) == ""
    assert hosttools.ensure(tmp_path / "headers", tmp_path / "log") == ()  # rebuilt once: left alone since
