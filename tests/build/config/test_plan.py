"""The fix plan on a small Kconfig tree (fast): every level down in dependency order,
the cheapest way of an `||`, never COMPILE_TEST, `!X`, a bool under an m dependency,
a hidden prompt, a value that follows a default, a select."""

from __future__ import annotations

from pathlib import Path

import pytest

from distkernel.build.config.explain import Explainer
from distkernel.build.config.kconfig import Tree, parse_tree
from distkernel.build.config.plan import Planner

KCONFIG = """
config MODULES
	bool "Modules"
	modules
config COMPILE_TEST
	bool "Build test"
config EXPERT
	bool "Expert"
config NET
	bool "Net"
config INET
	bool "Inet"
	depends on NET
config BLOCK
	bool "Block" if EXPERT
	default y
menuconfig FS
	tristate "Filesystems"
if FS
config EXT4
	tristate "ext4"
	depends on BLOCK && (INET || ACME_SOC || COMPILE_TEST)
config EXT4_ACL
	bool "ext4 acl"
	depends on EXT4
config NO_LEGACY
	bool "no legacy"
	depends on !LEGACY
endif
config LEGACY
	bool "legacy"
config SELECTED
	tristate "selected"
	select LEGACY
config VETO
	bool "veto"
	select LEGACY
config HELPER
	tristate
config USER
	tristate "user"
	select HELPER
config NR
	int "nr" if EXPERT
	default 4
config HZ_1000
	bool "1000 Hz"
config HZ
	int
	default 1000 if HZ_1000
	default 250
config TITLE
	string "title"
	depends on NET
config BUS
	tristate "bus"
config HELPER_AUTO
	bool "autoselect helpers"
	depends on BUS
	default y
menu "Algorithms"
	visible if !HELPER_AUTO
config ALGO
	tristate "algo"
	depends on BUS
endmenu
config AUTOSEL
	bool "autoselect frontends"
	depends on BUS
	default y
config HIDE
	bool
	depends on AUTOSEL && !EXPERT
	default y
menu "Frontends"
	visible if !HIDE
config FE
	tristate "frontend"
	depends on BUS
endmenu
"""


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    (tmp_path / "Kconfig").write_text(KCONFIG)
    return parse_tree(tmp_path, "x86")


def plan(tree: Tree, effective: dict[str, str], name: str, value: str) -> list[str] | None:
    steps = Planner(tree, effective).plan(name, value)
    return None if steps is None else [s.line() for s in steps]


def test_every_level_in_dependency_order_and_the_cheapest_way(tree: Tree) -> None:
    # =m needs MODULES; EXT4 sits in `if FS` and needs BLOCK (shown by EXPERT) and one of
    # INET (which needs NET), ACME_SOC (another arch's) or COMPILE_TEST (never a fix).
    assert plan(tree, {"CONFIG_HZ": "250"}, "EXT4", "m") == [
        "CONFIG_MODULES=y",
        "CONFIG_FS=m",
        "CONFIG_EXPERT=y",
        "CONFIG_BLOCK=y",
        "CONFIG_NET=y",
        "CONFIG_INET=y",
        "CONFIG_EXT4=m",
    ]
    # A bool under an m dependency is y (kconfig makes its m y), and needs no more than m.
    assert plan(tree, {"CONFIG_MODULES": "y", "CONFIG_FS": "m", "CONFIG_BLOCK": "y", "CONFIG_NET": "y",
                       "CONFIG_INET": "y", "CONFIG_EXT4": "m"}, "EXT4_ACL", "y") == ["CONFIG_EXT4_ACL=y"]  # fmt: skip


def test_not_selects_defaults_and_other_types(tree: Tree) -> None:
    on = {"CONFIG_FS": "y", "CONFIG_LEGACY": "y"}
    assert plan(tree, on, "NO_LEGACY", "y") == ["CONFIG_LEGACY=n", "CONFIG_NO_LEGACY=y"]
    assert plan(tree, on | {"CONFIG_VETO": "y"}, "NO_LEGACY", "y") is None  # VETO selects LEGACY
    assert plan(tree, {}, "HELPER", "y") == ["CONFIG_USER=y"]  # no prompt: through a select
    assert plan(tree, {"CONFIG_NR": "4"}, "NR", "8") == ["CONFIG_EXPERT=y", "CONFIG_NR=8"]
    assert plan(tree, {"CONFIG_HZ": "250"}, "HZ", "1000") == ["CONFIG_HZ_1000=y", "CONFIG_HZ=1000"]
    assert plan(tree, {}, "TITLE", '"x"') == ["CONFIG_NET=y", 'CONFIG_TITLE="x"']


def test_the_explanation_names_the_cheapest_way_and_never_compile_test(tree: Tree) -> None:
    eff = {"CONFIG_FS": "y", "CONFIG_BLOCK": "y", "CONFIG_MODULES": "y"}
    why = Explainer(tree, eff, {}).why("CONFIG_EXT4", "y")
    assert "`INET || ACME_SOC || COMPILE_TEST` (Kconfig:22) with INET=n, COMPILE_TEST=n" in why.text
    assert "cheapest way: INET (2 changes)" in why.text
    assert why.fix == ("CONFIG_NET=y", "CONFIG_INET=y")
    assert why.text.endswith(
        "fix: add CONFIG_NET=y, CONFIG_INET=y, then CONFIG_EXT4=y takes (CONFIG_INET needs CONFIG_NET=y)"
    )
    assert "COMPILE_TEST=y" not in why.text
    strings = Explainer(tree, {"CONFIG_NET": "y", "CONFIG_TITLE": '"a"'}, {})
    assert strings.explain("CONFIG_TITLE", "y") == (
        'CONFIG_TITLE is a string option: its value is a quoted string, e.g. CONFIG_TITLE="a" (its value now)'
    )


def test_a_symbol_the_plan_shows_takes_its_default(tree: Tree) -> None:
    """HELPER_AUTO is absent (BUS is off) and reads n; once BUS=m it is y by default and
    hides the menu: the plan sets it to n. HIDE has no prompt: its dependency goes off."""
    off = {"CONFIG_MODULES": "y", "CONFIG_BUS": "n"}
    assert plan(tree, off, "ALGO", "m") == ["CONFIG_BUS=m", "CONFIG_HELPER_AUTO=n", "CONFIG_ALGO=m"]
    assert plan(tree, off, "FE", "m") == ["CONFIG_BUS=m", "CONFIG_AUTOSEL=n", "CONFIG_FE=m"]
    # An =n the plan added for a symbol it never shows is left out.
    assert plan(tree, off, "BUS", "m") == ["CONFIG_BUS=m"]


def test_a_negated_constant_is_no_way_not_an_endless_search(tmp_path: Path) -> None:
    """`depends on !y`: nothing can satisfy it, and the search says so instead of pushing
    the `!` into the constant until Python's recursion limit (which a 6.1 config brought
    to the real 6.12 x86 tree hit)."""
    (tmp_path / "Kconfig").write_text('config NEVER\n\tbool "never"\n\tdepends on !y\n')
    assert plan(parse_tree(tmp_path, "x86"), {}, "NEVER", "y") is None
