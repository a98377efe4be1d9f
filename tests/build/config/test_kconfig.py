"""The Kconfig reader and explanations on a small fake tree (fast), and the parse of
the real 6.1 tree (once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from distkernel.build.config import kexpr
from distkernel.build.config.explain import Explainer
from distkernel.build.config.kconfig import Tree, parse_tree

FAKE = {
    "Kconfig": 'mainmenu "fake"\nsource "arch/$(SRCARCH)/Kconfig"\nsource "lib/Kconfig"\n',
    "arch/x86/Kconfig": "config X86\n\tdef_bool y\n\tselect HAVE_FOO\n",
    "lib/Kconfig": """
config MODULES
	bool "Modules"
	modules
	help
		if this looked like a keyword
		it is still help text

config HAVE_FOO
	bool

menu "Virt"
	depends on HAVE_FOO

menuconfig VIRT
	bool "Virtualization"

if VIRT   # a comment
config HRT
	bool "timers"
config KVM
	tristate "KVM"
	depends on HRT && !BROKEN
	select CRC
endif
endmenu

config BROKEN
	bool "broken"

config CRC
	tristate "crc"
	default y

choice
	prompt "Frequency"
	default HZ_100
config HZ_100
	bool "100"
config HZ_250
	bool "250"
endchoice

config NR
	int "nr" if BROKEN
	range 1 8
	default 4
""",
}


@pytest.fixture
def fake(tmp_path: Path) -> Tree:
    for rel, text in FAKE.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    return parse_tree(tmp_path, "x86")


def test_blocks_sources_and_choices(fake: Tree) -> None:
    assert fake.files == 3
    kvm = fake.symbols["KVM"].definitions[0]
    assert [w for _, w in kvm.dependency()] == ["menu lib/Kconfig:13", "if-block lib/Kconfig:18", "lib/Kconfig:23"]
    assert fake.symbols["MODULES"].type == "bool" and "it" not in fake.symbols
    assert fake.choices[0].members == ["HZ_100", "HZ_250"] and fake.choices[0].prompt == "Frequency"
    assert [c.target for c in fake.symbols["CRC"].selected_by] == ["KVM"]
    assert [c.target for c in fake.symbols["HAVE_FOO"].selected_by] == ["X86"]


def test_explanations(fake: Tree) -> None:
    eff = {"CONFIG_X86": "y", "CONFIG_HAVE_FOO": "y", "CONFIG_HZ_100": "y", "CONFIG_NR": "4", "CONFIG_CRC": "y"}
    ex = Explainer(fake, eff, {})
    assert ex.explain("CONFIG_KVM", "y") == (
        "unmet dependencies (CONFIG_KVM needs them =y): VIRT=n (if-block lib/Kconfig:18); HRT=n (lib/Kconfig:23); "
        "fix: add CONFIG_VIRT=y, CONFIG_HRT=y, then CONFIG_KVM=y takes"
    )
    assert "did you mean CONFIG_KVM?" in ex.explain("CONFIG_KVN", "y")
    assert "=m needs CONFIG_MODULES=y" in ex.explain("CONFIG_KVM", "m")
    assert "is a bool" in ex.explain("CONFIG_HRT", "m")
    assert "choice `Frequency`" in ex.explain("CONFIG_HZ_250", "y")
    assert "needs one member" in ex.explain("CONFIG_HZ_100", "n")
    assert "selected by CONFIG_X86=y" in ex.explain("CONFIG_HAVE_FOO", "n")
    assert "prompt is hidden: `BROKEN` is n" in ex.explain("CONFIG_NR", "9")


def test_expressions() -> None:
    e = kexpr.parse('A && (B || !C) && D = "x" # trailing comment')
    assert kexpr.to_text(e) == 'A && (B || !C) && D = "x"'
    values = {"A": "y", "B": "m", "C": "y", "D": '"x"'}
    ev = kexpr.Evaluator(lambda n: values.get(n), modules=True)
    assert ev.tri(e) == 1
    assert kexpr.split_if('"a if b" if X && $(f,if y)') == ('"a if b"', "X && $(f,if y)")
    assert kexpr.Evaluator(lambda n: None, modules=False).tri(kexpr.parse("m")) == 0


@pytest.mark.kernel
def test_the_real_61_tree(kconfig_tree: Tree) -> None:
    """Linux 6.1 (where Kconfiglib 14.1 fails at kernel/module/Kconfig's bare `modules`)."""
    assert kconfig_tree.files > 1000 and len(kconfig_tree.symbols) > 15000
    assert kconfig_tree.symbols["MODULES"].definitions[0].where == "kernel/module/Kconfig:2"
    kvm = kconfig_tree.symbols["KVM"].definitions[0]
    assert [kexpr.to_text(e) for e, _ in kvm.dependency()] == [
        "VIRTUALIZATION",
        "HAVE_KVM",
        "HIGH_RES_TIMERS",
        "X86_LOCAL_APIC",
    ]
