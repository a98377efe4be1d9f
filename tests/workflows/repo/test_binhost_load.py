"""Load: 50 clients install from the nginx binhost at once into 50 sandbox roots. All
succeed with the package verified, and nginx's access log shows exactly one index and
one package request per client. Bounded by a generous timeout, never timed."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from distkernel.build.trust.keys import KeySet
from distkernel.core.cache import sha256_file
from distkernel.core.paths import DOWNLOADS, STATE
from tests.conftest import Built, env_with
from tests.workflows.repo.binhost_fixtures import index_entry, install_argv, requests, trusting_root
from tests.workflows.repo.nginx import Nginx

pytestmark = pytest.mark.kernel

CLIENTS = 50
TIMEOUT = 1800  # seconds for all of them together: a bound against a hang, not a measurement


def test_fifty_clients_install_from_nginx_at_once(
    server: Nginx, www: Path, tmp_path: Path, keys: KeySet, default_package: Built
) -> None:
    entry = index_entry(www / "main")
    roots = [trusting_root(tmp_path / f"root{i:02}", keys) for i in range(CLIENTS)]
    env = env_with(DISTKERNEL_CACHE=str(tmp_path / "cache"))
    logs = [tmp_path / f"client{i:02}.err" for i in range(CLIENTS)]
    procs = []
    for root, log in zip(roots, logs, strict=True):
        with open(log, "w") as err:
            argv = install_argv(root, server.url + "main/")
            procs.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err, env=env))
    try:
        codes = [p.wait(timeout=TIMEOUT) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    failed = {str(log): log.read_text()[-500:] for log, code in zip(logs, codes, strict=True) if code != 0}
    assert not failed, failed
    release = default_package.metadata["kernel_release"]
    name = str(entry["path"]).rsplit("/", 1)[1]
    for root in roots:
        assert sha256_file(root / DOWNLOADS / name) == entry["sha256"]  # the package as the signed index names it
        assert release in (root / STATE).read_text()
    access = server.log()
    index, packages = requests(access, "GET", "/main/index.json"), requests(access, "GET", "/main/packages/")
    assert len(index) == CLIENTS and {line[2] for line in index} == {"200"}, access
    assert len(packages) == CLIENTS and {line[2] for line in packages} == {"200"}, access
    assert {int(line[3]) for line in packages} == {entry["size"]}
    assert len(access) == 2 * CLIENTS  # nothing else was asked for
