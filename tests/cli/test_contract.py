"""One contract for every command: --json everywhere (errors as JSON on stdout too), the
parser's own errors as one line with the fix, the same refusal of a --root that does not
exist, and inputs that are not what the command reads refused with exit 2."""

from __future__ import annotations

import gzip
from pathlib import Path

import click
import pytest

from distkernel.cli import command_tree
from tests.conftest import DEFAULT_RECIPE, Run, assert_user_facing_error, cli

ROOT_COMMANDS = [
    ["list"],
    ["remove", "6.1.0"],
    ["rollback"],
    ["mark-good"],
    ["recover"],
    ["install", "pkg.tar.zst"],
    ["modules", "list"],
    ["modules", "add", "src"],
    ["modules", "rebuild"],
    ["probe"],
    ["config", str(DEFAULT_RECIPE)],
    ["fetch", "qemu-minimal", "--from", "http://127.0.0.1:9"],
    ["test"],
]


def json_error(run: Run, code: int, needle: str) -> dict:  # type: ignore[type-arg]
    assert run.code == code, (run.code, run.err)
    doc = run.json()["error"]
    assert doc["exit_code"] == code and needle in doc["message"], doc
    assert run.err.startswith(f"distkernel: error: {doc['message']}")
    return doc  # type: ignore[no-any-return]


def test_every_command_takes_json() -> None:
    leaves = {name: cmd for name, cmd in command_tree().items() if not isinstance(cmd, click.Group)}
    assert {"install", "probe", "repo serve", "config upgrade", "recipe new", "completion"} <= leaves.keys()
    lacking = [name for name, cmd in leaves.items() if not any("--json" in getattr(p, "opts", ()) for p in cmd.params)]
    assert not lacking, lacking


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["install", "--frm", "x", "pkg"], "install: no such option '--frm' (did you mean '--from'?); usage: "),
        (["install"], "install: missing argument 'PACKAGE|NAME'; usage: distkernel install [OPTIONS] PACKAGE|NAME"),
        (["instal", "pkg"], "no such command 'instal' (did you mean install?)"),
        (["test", "--firmware", "bios2", "x"], "test: --firmware: 'bios2' is not one of 'bios', 'uefi'"),
        (["config", "upgrade", "x.config", "--arch", "mips"], "config upgrade: --arch: 'mips' is not one of"),
        (["list", "--keep", "2"], "list: no such option '--keep'"),
    ],
)
def test_parser_errors_are_one_line_and_json(argv: list[str], needle: str) -> None:
    run = cli(*argv)
    assert_user_facing_error(run, 2, needle)
    assert len(run.err.strip().splitlines()) == 1 and run.out == ""
    json_error(cli(*argv, "--json"), 2, needle)


@pytest.mark.parametrize("argv", ROOT_COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_a_root_that_does_not_exist_is_one_error_everywhere(tmp_path: Path, argv: list[str]) -> None:
    missing = tmp_path / "no-such-root"
    run = cli(*argv, "--root", missing, cwd=tmp_path)
    assert_user_facing_error(run, 2, f"--root {missing}: not a directory (it does not exist); create it")
    assert not missing.exists(), "the command created the root"
    json_error(cli(*argv, "--root", missing, "--json", cwd=tmp_path), 2, f"--root {missing}: not a directory")


def test_a_file_as_root_is_refused(tmp_path: Path) -> None:
    file = tmp_path / "f"
    file.write_text("")
    assert_user_facing_error(cli("list", "--root", file), 2, f"--root {file}: not a directory; create it")


def test_domain_errors_are_json_with_json(tmp_path: Path) -> None:
    junk = tmp_path / "x.tar.zst"
    junk.write_bytes(b"not a package")
    json_error(cli("inspect", junk, "--json"), 2, "not a readable distkernel package")
    json_error(cli("inspect", tmp_path / "none.tar.zst", "--json"), 2, "inspect: PACKAGE: ")


def test_recover_on_an_empty_root_writes_nothing(tmp_path: Path) -> None:
    assert cli("recover", "--root", tmp_path).code == 0
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("sub", ["diff", "upgrade"])
def test_config_diff_and_upgrade_refuse_files_that_are_not_configs(tmp_path: Path, sub: str) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello\nthis is not a kernel config\n")
    binary = tmp_path / "junk.gz"
    binary.write_bytes(b"\x1f\x8b garbage")
    real = tmp_path / "real.config"
    real.write_text("CONFIG_A=y\n")
    for bad in (text, binary, tmp_path / "missing.config"):
        argv: list[str | Path] = ["config", "diff", real, bad] if sub == "diff" else ["config", "upgrade", bad]
        assert_user_facing_error(cli(*argv), 2, f"{bad}: ")
    packed = tmp_path / "config.gz"
    packed.write_bytes(gzip.compress(b"CONFIG_A=m\n"))
    if sub == "diff":
        run = cli("config", "diff", real, packed, "--json")
        assert run.code == 0 and run.json()["changed"] == {"CONFIG_A": {"from": "y", "to": "m"}}


def test_set_must_name_an_option_and_a_value(tmp_path: Path) -> None:
    for bad in ("KVM", "CONFIG_KVM", "not a name=y", "CONFIG_KVM="):
        # checked before the recipe is read: a missing recipe is not reached
        run = cli("config", tmp_path / "none.toml", "--set", bad)
        assert_user_facing_error(run, 2, f"--set {bad}: expected CONFIG_NAME=VALUE")


def test_cross_build_without_the_cross_compiler_names_the_package(
    tmp_path: Path, fake_tarball: Path, tmp_cache: dict[str, str]
) -> None:
    import shutil

    from distkernel.core.cache import sha256_file

    if shutil.which("aarch64-linux-gnu-gcc"):
        pytest.skip("the arm64 cross compiler is installed here")
    recipe = tmp_path / "arm.toml"
    recipe.write_text(
        f'[kernel]\nname = "arm"\nsource = "tarball:{fake_tarball}"\nsha256 = "{sha256_file(fake_tarball)}"\n'
        'arch = "arm64"\n\n[config]\nbase = "tinyconfig"\n'
    )
    run = cli("config", recipe, env=tmp_cache)
    assert_user_facing_error(
        run, 3, "cross compiler `aarch64-linux-gnu-gcc` is not installed", "apt-get install", "gcc-aarch64-linux-gnu"
    )
