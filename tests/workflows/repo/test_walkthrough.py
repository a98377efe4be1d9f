"""The binhost walk-through of README.md, as a user without a signing key in the recipe
follows it: build, sign, publish, serve, trust the key on the client, install --from."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from distkernel.build.trust.gate import TRUSTED_DIR
from distkernel.build.trust.keys import PACKAGE_KEY, PACKAGE_PUB, KeySet
from tests.conftest import Built, cli, env_with
from tests.workflows.repo.conftest import served


@pytest.mark.kernel
def test_walkthrough_with_a_package_built_without_a_key(default_package: Built, tmp_path: Path, keys: KeySet) -> None:
    pkg = tmp_path / default_package.package.name
    shutil.copyfile(default_package.package, pkg)
    repo, root = tmp_path / "bh", tmp_path / "sandbox"
    assert cli("repo", "init", repo, "--key", keys.path(PACKAGE_KEY)).code == 0
    refused = cli("repo", "add", repo, pkg)
    assert refused.code == 2 and "distkernel sign" in refused.err  # the hint is the next step
    assert cli("sign", pkg, "--key", keys.path(PACKAGE_KEY)).code == 0
    assert cli("repo", "add", repo, pkg).code == 0
    (root / TRUSTED_DIR).mkdir(parents=True)
    shutil.copyfile(keys.path(PACKAGE_PUB), root / TRUSTED_DIR / "package.pub")
    env = env_with(DISTKERNEL_CACHE=str(tmp_path / "cache"))
    with served(repo) as url:
        run = cli(
            "install", "qemu-minimal", "--from", url,
            "--root", root, "--layout", "plain", "--initramfs", "none", "--json", env=env,
        )  # fmt: skip
    assert run.code == 0, run.err
    assert run.json()["release"] == default_package.metadata["kernel_release"]
