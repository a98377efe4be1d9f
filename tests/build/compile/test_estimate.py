"""The first build's object count, estimated from the tree's Kbuild files: exact on a
small tree that has each construct, within a fifth of the real count on the default
recipe's build of Linux 6.1."""

from __future__ import annotations

from pathlib import Path

import pytest

from distkernel.build.compile.estimate import ESTIMATED_EXTRA, config_values, estimate_objects
from distkernel.build.compile.kernel import expected_objects
from distkernel.build.recipe import load_recipe
from distkernel.build.source import prepare_source, source_key
from distkernel.core import cache
from distkernel.workflows.pipeline import build_id
from tests.conftest import DEFAULT_RECIPE, Built

TREE = {
    "Kbuild": "obj-y += init/ fs/\nobj-$(CONFIG_NET) += net/\n",
    "Makefile": "libs-y := lib/\n",
    "arch/x86/Makefile": "drivers-$(CONFIG_PCI) += arch/x86/pci/\n",
    "arch/x86/pci/Makefile": "obj-y += common.o\n",
    "init/Makefile": "obj-y := main.o version.o\nobj-$(CONFIG_NOPE) += gone.o\n",
    "net/Makefile": "obj-y += socket.o\n",  # CONFIG_NET is off: never read
    "lib/Makefile": "lib-y := sort.o \\\n\tparser.o\nifdef CONFIG_CRC\nobj-y += crc.o\nelse\nobj-y += nocrc.o\nendif\n",
    "fs/Makefile": "obj-$(CONFIG_EXT4_FS) += ext4/\nsubdir-y += nls\nmmu-y := nommu.o\nmmu-$(CONFIG_MMU) := mmap.o\n"
    "obj-y += $(mmu-y)\n",
    "fs/nls/Makefile": "obj-y += nls_base.o\n",
    "fs/ext4/Makefile": "obj-$(CONFIG_EXT4_FS) += ext4.o\next4-y := super.o inode.o\n"
    "ext4-$(CONFIG_EXT4_ACL) += acl.o\next4-$(CONFIG_NOPE) += no.o\n",
}


def test_each_kbuild_construct_counts(tmp_path: Path) -> None:
    for rel, text in TREE.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    config = {"CONFIG_EXT4_FS": "m", "CONFIG_EXT4_ACL": "y", "CONFIG_MMU": "y", "CONFIG_CRC": "y", "CONFIG_PCI": "y"}
    # init 2; fs: mmap.o (not nommu.o) 1, nls 1, ext4 = 3 parts + its .mod.o; lib 2 + crc.o; pci 1
    assert estimate_objects(tmp_path, "x86", config) - ESTIMATED_EXTRA == 2 + 1 + 1 + 4 + 3 + 1
    assert estimate_objects(tmp_path, "x86", {}) - ESTIMATED_EXTRA == 2 + 1 + 1 + 3  # nommu.o, nocrc.o


@pytest.mark.kernel
def test_the_estimate_is_within_a_fifth_of_a_real_first_build(default_package: Built) -> None:
    recipe = load_recipe(DEFAULT_RECIPE)
    config = cache.cache_dir("build") / build_id(recipe, source_key(recipe)) / "obj/.config"
    assert config.is_file(), f"the default recipe's build dir ({config.parent}) is gone"
    counted = expected_objects(cache.sha256_file(config), "x86_64")
    assert counted, "no object count recorded for the default recipe's build"
    estimate = estimate_objects(prepare_source(recipe).path, "x86", config_values(config))
    assert abs(estimate - counted) <= counted / 5, (estimate, counted)
