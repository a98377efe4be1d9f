"""The default recipe built for real: the package, its determinism, the no-op path,
and an out-of-tree module built against its headers tree."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from distkernel.build.package.reader import check_package, read_metadata
from tests.conftest import DATA, DEFAULT_RECIPE, Built, cli, env_with

pytestmark = pytest.mark.kernel


def test_package_metadata(default_package: Built) -> None:
    m = default_package.metadata
    assert default_package.package.name == "qemu-minimal-6.1.192-distkernel-x86_64.tar.zst"
    assert (m["name"], m["kernel_release"], m["version"], m["arch"], m["variant"]) == (
        "qemu-minimal",
        "6.1.192-distkernel",
        "6.1.192",
        "x86_64",
        "",
    )
    assert {"test_module", "ext4", "virtio_blk", "jbd2"} <= set(m["modules"])
    assert m["toolchain"]["gcc"].startswith("gcc")
    assert set(m["sizes"]) >= {"kernel", "modules", "headers", "files"}
    assert m["build_date"] == int((Path("/usr/src/linux-source-6.1.tar.xz")).stat().st_mtime) or m["build_date"] > 0
    assert read_metadata(default_package.package).to_json() == m


def test_every_manifest_hash_verifies_and_plain_tar_reads_it(default_package: Built, tmp_path: Path) -> None:
    result = check_package(default_package.package)
    assert result.ok, result.problems[:5]
    assert result.files == default_package.metadata["sizes"]["files"]
    subprocess.run(["tar", "--zstd", "-xf", default_package.package, "-C", tmp_path], check=True)
    assert (tmp_path / "metadata.json").is_file()
    assert (tmp_path / "kernel/vmlinuz").stat().st_size > 500_000
    assert not (tmp_path / "modules/build").exists() and not (tmp_path / "modules/source").exists()
    release = (tmp_path / "headers/include/config/kernel.release").read_text().strip()
    assert release == "6.1.192-distkernel"
    config = (tmp_path / "kernel/config").read_text()
    assert "CONFIG_TEST_LKM=m" in config and 'CONFIG_LOCALVERSION="-distkernel"' in config
    # A compiler listing whose comments depend on where it was compiled (a distcc host
    # cannot read the source) is not shipped; the header made from it is.
    assert (tmp_path / "headers/scripts/mod/devicetable-offsets.h").is_file()
    assert not (tmp_path / "headers/scripts/mod/devicetable-offsets.s").exists()


def test_cli_inspect_and_verify(default_package: Built) -> None:
    run = cli("inspect", default_package.package, "--json")
    assert run.code == 0 and run.json()["kernel_release"] == "6.1.192-distkernel"
    human = cli("verify", default_package.package)
    assert human.code == 0 and "OK" in human.out


def test_noop_rebuild_answers_from_the_cache_without_make(default_package: Built, tmp_path: Path) -> None:
    """A `make` that fails when asked to build is first on PATH: the cache must answer."""
    trap = tmp_path / "bin"
    trap.mkdir()
    (trap / "make").write_text(
        f'#!/bin/sh\n[ "$1" = "--version" ] && exec {shutil.which("make")} --version\n'
        f'echo "$@" > {tmp_path}/make-called\nexit 99\n'
    )
    (trap / "make").chmod(0o755)
    out = tmp_path / "again"
    run = cli("build", DEFAULT_RECIPE, "--out", out, "--json", env=env_with(PATH=f"{trap}:{os.environ['PATH']}"))
    assert run.code == 0, run.err
    assert run.json()["cached"] is True
    assert not (tmp_path / "make-called").exists()
    assert (out / default_package.package.name).read_bytes() == default_package.package.read_bytes()


def test_fresh_build_in_another_dir_is_byte_identical(default_package: Built, tmp_path: Path) -> None:
    run = cli("build", DEFAULT_RECIPE, "--out", tmp_path, "--fresh", "--json")
    assert run.code == 0, run.err
    doc = run.json()
    assert doc["cached"] is False
    assert Path(doc["package"]).read_bytes() == default_package.package.read_bytes()
    # the build dir is kept until the next fresh build: its logs are still there to read
    log = Path(doc["log"])
    assert "  CC      init/main.o" in log.read_text().splitlines()
    # the headers part was made while the compile finished (build/ahead.py)
    assert "headers part: made during the compile" in (log.parent / "package.log").read_text().splitlines()


def test_out_of_tree_module_builds_against_the_packaged_headers(default_package: Built, tmp_path: Path) -> None:
    subprocess.run(["tar", "--zstd", "-xf", default_package.package, "-C", tmp_path, "headers"], check=True)
    module = tmp_path / "hello"
    shutil.copytree(DATA / "hello", module)
    subprocess.run(["make", "-C", tmp_path / "headers", f"M={module}", "modules"], check=True, capture_output=True)
    vermagic = subprocess.run(
        ["modinfo", "-F", "vermagic", module / "hello.ko"], capture_output=True, text=True, check=True
    ).stdout
    assert vermagic.split()[0] == default_package.metadata["kernel_release"]


def test_config_reports_every_requested_value(default_package: Built) -> None:
    run = cli("config", DEFAULT_RECIPE, "--json")
    assert run.code == 0, run.err
    doc = run.json()
    assert doc["kernel_release"] == "6.1.192-distkernel"
    assert doc["missed"] == 0 and doc["requested"] == len(doc["entries"]) >= 40
    lkm = next(e for e in doc["entries"] if e["option"] == "CONFIG_TEST_LKM")
    line = DEFAULT_RECIPE.read_text().splitlines().index('options = { CONFIG_TEST_LKM = "m" }') + 1
    assert lkm == {**lkm, "requested": "m", "effective": "m", "took": True, "from": f"qemu-minimal.toml:{line}"}
    pvh = next(e for e in doc["entries"] if e["option"] == "CONFIG_PVH")
    assert pvh["from"].startswith("fragments/qemu-uefi.config:") and pvh["overrides"][0]["from"] == "base tinyconfig"
    assert json.dumps(doc)  # serializable
