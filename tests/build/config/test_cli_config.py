"""The config commands through the real entry point: bad input is one clear line,
`config diff`, `config upgrade` on the real tree, `probe`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from distkernel.build.config.savedconfig import find_saved
from distkernel.build.config.upgrade import upgrade
from distkernel.core.progress import reporting
from tests.build.config.conftest import write_recipe
from tests.conftest import assert_user_facing_error, cli
from tests.core.test_progress import Recorder


def test_a_bad_fragment_line_names_file_and_line(tmp_path: Path) -> None:
    recipe = write_recipe(
        tmp_path, 'base = "tinyconfig"\nfragments = ["f.config"]', {"f.config": "CONFIG_A=y\nKVM y\n"}
    )
    run = cli("config", recipe)
    assert_user_facing_error(run, 2, "f.config:2: not a config line: `KVM y`")


def test_an_unknown_feature_lists_the_known_ones(tmp_path: Path) -> None:
    run = cli("config", write_recipe(tmp_path, 'base = "tinyconfig"\nfeatures = ["dockr"]'))
    assert_user_facing_error(run, 2, "config.features: unknown feature `dockr` (known: docker, efi-uki, hardening")


def test_base_or_savedconfig_is_required(tmp_path: Path) -> None:
    run = cli("config", write_recipe(tmp_path, "strict = true"))
    assert_user_facing_error(run, 2, "[config]: needs `base` (or `savedconfig`)")


def test_savedconfig_choice(tmp_path: Path) -> None:
    for name in ("config-6.1.100", "config-6.1.192-gentoo", "config-6.2.0", "notes.txt"):
        (tmp_path / name).write_text("")
    exact = find_saved(tmp_path, "6.1.192")
    assert exact and exact.exact and exact.path.name == "config-6.1.192-gentoo"
    earlier = find_saved(tmp_path, "6.1.150")
    assert earlier and not earlier.exact and earlier.version == "6.1.100"
    assert find_saved(tmp_path, "6.0.1") is None


def test_config_diff(tmp_path: Path) -> None:
    (tmp_path / "a").write_text('CONFIG_A=y\nCONFIG_B=m\n# CONFIG_C is not set\nCONFIG_S="x"\n')
    (tmp_path / "b").write_text('CONFIG_A=y\nCONFIG_B=y\nCONFIG_D=m\nCONFIG_S="y"\n')
    run = cli("config", "diff", tmp_path / "a", tmp_path / "b", "--json")
    assert run.code == 0, run.err
    assert run.json() == {
        "added": {"CONFIG_D": "m"},
        "removed": {},
        "changed": {"CONFIG_B": {"from": "m", "to": "y"}, "CONFIG_S": {"from": '"x"', "to": '"y"'}},
    }
    human = cli("config", "diff", tmp_path / "a", tmp_path / "b")
    assert "1 only in B, 0 only in A, 2 changed" in human.out
    assert_user_facing_error(cli("config", "diff", tmp_path / "a", tmp_path / "nope"), 2, "nope: no such config file")


def test_probe_writes_host_json(tmp_path: Path) -> None:
    run = cli("probe", "-o", tmp_path / "host.json")
    assert run.code == 0, run.err
    doc = json.loads((tmp_path / "host.json").read_text())
    assert {"arch", "kernel_release", "loaded_modules", "modaliases", "root_fs", "firmware"} <= set(doc)


@pytest.mark.kernel
def test_config_upgrade_from_an_older_config(tmp_path: Path) -> None:
    old = tmp_path / "config-old"
    old.write_text("CONFIG_64BIT=y\nCONFIG_MODULES=y\nCONFIG_KVM=y\nCONFIG_NO_SUCH_THING=y\nCONFIG_SMP=y\n")
    run = cli("config", "upgrade", old, "--source", "debian:linux-source-6.1", "--out", tmp_path / "new", "--json")
    assert run.code == 0, run.err
    doc = run.json()
    assert doc["version"].startswith("6.1.")
    assert doc["removed"] == {"CONFIG_NO_SUCH_THING": "y"}
    assert "fix: add CONFIG_HIGH_RES_TIMERS=y, then CONFIG_KVM=y takes" in doc["dropped"]["CONFIG_KVM"]["why"]
    assert doc["new"] and (tmp_path / "new").is_file()
    human = cli("config", "upgrade", old)
    assert human.code == 0 and "gone from this kernel" in human.out


@pytest.mark.kernel
def test_config_upgrade_lists_new_questions_apart_from_derived_symbols(defconfig: Path, tmp_path: Path) -> None:
    """What `make listnewconfig` lists (a prompt) is a question, with the value chosen;
    a new symbol without a prompt is derived: counted, listed only on request."""
    lines = defconfig.read_text().splitlines()
    older = {"CONFIG_PRINTK_TIME=y", "CONFIG_X86_64_SMP=y"}  # a question; a derived symbol
    assert older <= set(lines)
    old = tmp_path / "config-older"
    old.write_text("\n".join(line for line in lines if line not in older) + "\n")
    shown = Recorder()
    with reporting(shown):
        doc = upgrade(old, "debian:linux-source-6.1", "x86_64").to_json()
    assert shown.stages == ["upgrade: source", "upgrade: listnewconfig", "upgrade: olddefconfig", "upgrade: explain"]
    assert doc["questions"] == {"CONFIG_PRINTK_TIME": {"value": "n", "prompt": "Show timing information on printks"}}
    assert doc["derived"] == {"CONFIG_X86_64_SMP": "y"}
    human = cli("config", "upgrade", old)
    assert human.code == 0, human.err
    question = next(line for line in human.out.splitlines() if "CONFIG_PRINTK_TIME" in line)
    assert "new question" in question and "Show timing information on printks" in question
    assert "CONFIG_X86_64_SMP" not in human.out
    assert "1 new question, 1 new derived symbol (--derived lists them)" in human.out
