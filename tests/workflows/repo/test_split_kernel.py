"""The default kernel published as two parts behind Debian's nginx: a binary-only
install asks for the index and the kernel part alone (nginx's access log), a later
`modules add` of a dkms module fetches the headers part from the same binhost and the
module builds against it; a root with a registered dkms module gets both at install."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from distkernel.build.trust.keys import KeySet
from tests.conftest import DATA, Built, cli, env_with
from tests.workflows.repo.binhost_fixtures import index_entry, install, requests, trusting_root
from tests.workflows.repo.nginx import Nginx

pytestmark = pytest.mark.kernel


def _parts(www: Path) -> tuple[str, str]:
    entry = index_entry(www / "main")
    headers = entry["headers"]
    assert isinstance(headers, dict)
    return "/main/" + str(entry["path"]), "/main/" + str(headers["path"])


def _modules_add(root: Path, cache: Path) -> dict[str, Any]:
    run = cli(
        "modules", "add", DATA / "extmod" / "dkms", "--root", root, "--json", env=env_with(DISTKERNEL_CACHE=str(cache))
    )
    assert run.code == 0, run.err
    return run.json()


def test_binary_only_install_takes_the_kernel_part_and_modules_add_the_headers_part(
    server: Nginx, www: Path, tmp_path: Path, keys: KeySet, default_package: Built
) -> None:
    kernel, headers = _parts(www)
    root, cache = trusting_root(tmp_path / "root", keys), tmp_path / "cache"
    run = install(root, cache, server.url + "main/")
    assert run.code == 0, run.err
    assert run.json()["headers"] is False
    asked = [line[1] for line in requests(server.log(), "GET", "/main/")]
    assert asked == ["/main/index.json", kernel], server.log()
    release = default_package.metadata["kernel_release"]
    assert sorted(p.name for p in (root / f"usr/src/linux-headers-{release}").iterdir()) == [".config"]

    added = _modules_add(root, cache)
    asked = [line[1] for line in requests(server.log(), "GET", "/main/")]
    assert asked == ["/main/index.json", kernel, headers], server.log()
    assert [(o["name"], o["release"], o["status"]) for o in added["outcomes"]] == [("dk_dkms", release, "built")]
    state = json.loads((root / "var/lib/distkernel/state.json").read_text())
    assert state["kernels"][release]["headers"] is True
    assert (root / f"lib/modules/{release}/build/Makefile").is_file()


def test_a_root_with_a_registered_dkms_module_gets_both_parts_at_install(
    server: Nginx, www: Path, tmp_path: Path, keys: KeySet, default_package: Built
) -> None:
    kernel, headers = _parts(www)
    root, cache = trusting_root(tmp_path / "root", keys), tmp_path / "cache"
    _modules_add(root, cache)  # registered: no kernel to build it for yet
    run = install(root, cache, server.url + "main/")
    assert run.code == 0, run.err
    asked = [line[1] for line in requests(server.log(), "GET", "/main/")]
    assert asked == ["/main/index.json", kernel, headers], server.log()
    doc = run.json()
    assert doc["headers"] is True
    assert [(m["name"], m["status"]) for m in doc["external_modules"]] == [("dk_dkms", "built")]
