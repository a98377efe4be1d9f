"""The CLI read off a real terminal screen (tmux) at 80 and 140 columns: what a person
copies (releases, option names, fixes, paths) is never cut or split, tables fold on a
narrow screen, statuses are in colour only on a terminal and without NO_COLOR."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from distkernel.target.install import install_package
from tests.cli.screen import Screen, screen
from tests.conftest import Built, cli, env_with
from tests.target.install.helpers import fake_package, make_root

RELEASE = "6.1.192-distkernel"  # the release the issue saw cut to `6.1.192…`
FIX = "add CONFIG_VIRTUALIZATION=y, CONFIG_HIGH_RES_TIMERS=y, then CONFIG_KVM=y takes"
COLOUR = re.compile(r"\x1b\[[0-9;]*m")


def fits(s: Screen, cols: int) -> None:
    assert "…" not in s.text, s.text
    assert all(len(line) <= cols for line in s.lines), s.text


def whole_on_one_line(s: Screen, value: str) -> None:
    """On a physical line of the screen: not truncated, not wrapped inside."""
    assert any(value in line for line in s.lines), (value, s.text)


@pytest.fixture
def installed_root(tmp_path: Path) -> Path:
    root = make_root(tmp_path / "root")
    install_package(fake_package(tmp_path, RELEASE), root, layout="plain", initramfs="none")
    return root


@pytest.mark.parametrize("cols", [80, 140])
def test_list_shows_the_release_whole(installed_root: Path, tmp_path: Path, cols: int) -> None:
    s = screen("list", "--root", installed_root, cols=cols, cwd=tmp_path)
    assert s.code == 0
    fits(s, cols)
    whole_on_one_line(s, RELEASE)  # the value `remove` needs
    package = f"fake-{RELEASE}-x86_64.tar.zst"
    whole_on_one_line(s, package)
    if cols == 80:  # folded: the release heads its record, its fields below
        assert s.lines[0].startswith(f"{RELEASE}  layout: plain  default: yes"), s.text
        assert f"  package: {package}" in s.lines
    else:  # a table
        assert s.lines[0].split() == [
            "kernel", "layout", "default", "known-good", "boot", "initramfs", "ext.", "modules", "secure", "boot",
            "package",
        ]  # fmt: skip


@pytest.mark.parametrize("cols", [80, 140])
def test_remove_dry_run_names_every_path_whole(installed_root: Path, tmp_path: Path, cols: int) -> None:
    s = screen("remove", RELEASE, "--root", installed_root, "--force", "--dry-run", cols=cols, cwd=tmp_path)
    assert s.code == 0
    fits(s, cols)
    whole_on_one_line(s, f"boot/vmlinuz-{RELEASE}")
    whole_on_one_line(s, f"usr/lib/modules/{RELEASE}/")
    assert s.lines[-1] == "dry run: nothing was changed"


@pytest.mark.parametrize("cols", [80, 140])
def test_parser_errors_are_one_line_on_screen(tmp_path: Path, cols: int) -> None:
    s = screen("install", "--frm", "http://x", "pkg", cols=cols, cwd=tmp_path)
    assert s.code == 2
    assert len(s.joined) == 1, s.joined
    assert s.joined[0].startswith("distkernel: error: install: no such option '--frm' (did you mean '--from'?)")
    missing = tmp_path / "a-root-that-does-not-exist-and-has-a-long-name-to-go-past-eighty-columns"
    s = screen("recover", "--root", missing, cols=cols, cwd=tmp_path)
    assert s.code == 2 and len(s.joined) == 1, s.joined
    assert f"--root {missing}: not a directory" in s.joined[0]  # the path whole once the soft wrap is joined
    assert not missing.exists()


def test_status_in_colour_on_a_terminal_only(tmp_path: Path) -> None:
    nothing = env_with(PATH=str(tmp_path))  # no tool is found: doctor says MISSING
    s = screen("doctor", cols=140, cwd=tmp_path, env=nothing)
    assert s.code == 3 and "MISSING" in s.text
    line = next(line for line in s.styled.splitlines() if "MISSING" in line)
    assert re.search(r"\x1b\[[0-9;]*3[1-7][;m][^\x1b]*MISSING", line) or re.search(r"\x1b\[[0-9;]*31[;m]", line), repr(
        line
    )
    plain = screen("doctor", cols=140, cwd=tmp_path, env={**nothing, "NO_COLOR": "1"})
    line = next(line for line in plain.styled.splitlines() if "MISSING" in line)
    assert not re.search(r"\x1b\[[0-9;]*3[0-9]", line), repr(line)
    piped = cli("doctor", env=nothing)
    assert "MISSING" in piped.out and "\x1b[" not in piped.out


@pytest.fixture(scope="module")
def kvm_recipe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default recipe under another name (its own build dir: `config` never compiles)."""
    folder = tmp_path_factory.mktemp("screen-recipe")
    assert cli("recipe", "new", "screen-test", "--dir", folder).code == 0
    return folder / "screen-test.toml"


@pytest.mark.kernel
@pytest.mark.parametrize(("cols", "missed"), [(80, False), (140, True)])
def test_config_fix_is_whole_and_missed_shows_only_misses(
    kvm_recipe: Path, tmp_path: Path, cols: int, missed: bool
) -> None:
    args: list[str | Path] = [
        "config",
        kvm_recipe,
        "--set",
        "CONFIG_KVM=y",
        "--no-strict",
        *(["--missed"] if missed else []),
    ]
    s = screen(*args, cols=cols, cwd=tmp_path)
    assert s.code == 0, s.text
    fits(s, cols)
    for token in FIX.replace(",", "").split():
        if token.startswith("CONFIG_"):
            whole_on_one_line(s, token)
    assert f"fix: {FIX}" in " ".join(" ".join(s.lines).split())
    kvm = next(line for line in s.lines if line.startswith("CONFIG_KVM"))
    assert "NOT TAKEN" in kvm and "--set" in " ".join(s.lines)
    assert re.search(r"\x1b\[[0-9;]*31[;m]", next(x for x in s.styled.splitlines() if "NOT TAKEN" in x))
    shown = {line.split()[0] for line in s.lines if line.startswith("CONFIG_")}
    if missed:
        assert shown == {"CONFIG_KVM"}, s.text
    else:
        assert {"CONFIG_64BIT", "CONFIG_KVM", "CONFIG_TEST_LKM"} <= shown


@pytest.mark.kernel
def test_boot_result_and_log_path_at_80_columns(default_package: Built, tmp_path: Path) -> None:
    s = screen("test", default_package.package, "--keep-logs", cols=80, cwd=tmp_path)
    assert s.code == 0, s.text
    fits(s, 80)
    assert s.lines[0].startswith("PASS ")
    assert re.search(r"\x1b\[[0-9;]*32[;m]", next(x for x in s.styled.splitlines() if "PASS" in x))
    log = next(j for j in s.joined if j.endswith(".log"))
    assert Path(log.removeprefix("console log: ")).is_file(), s.joined  # whole: the file it names exists
