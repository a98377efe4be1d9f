"""The binhost behind a real web server: `repo add` writes static files that Debian's
nginx serves as they are; clients install from it, ask for the index conditionally
(a 304 the second time), skip a dead mirror and a stale one with a warning, and resume
a download the connection cut with a range request."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import pytest

from distkernel.build.trust.keys import KeySet
from tests.conftest import Built
from tests.workflows.repo.binhost_fixtures import fetch, index_entry, install, requests, trusting_root
from tests.workflows.repo.nginx import CuttingRelay, Nginx, dead_url

pytestmark = pytest.mark.kernel


def test_repo_add_writes_only_static_files_nginx_serves(www: Path, server: Nginx) -> None:
    files = sorted(str(p.relative_to(www / "main")) for p in (www / "main").rglob("*") if p.is_file())
    entry = index_entry(www / "main")
    headers = entry["headers"]
    assert isinstance(headers, dict)  # a package is published as its kernel part and its headers part
    assert files == sorted([".distkernel-repo.json", "index.json", str(entry["path"]), str(headers["path"])])
    with urllib.request.urlopen(server.url + "main/index.json") as r:
        assert r.headers["ETag"] and r.headers["Last-Modified"]
    with pytest.raises(urllib.error.HTTPError) as e:  # the repo's own settings are a dot file
        urllib.request.urlopen(server.url + "main/.distkernel-repo.json")
    assert e.value.code == 404


def test_install_from_nginx_then_the_index_is_not_fetched_again(
    server: Nginx, www: Path, tmp_path: Path, keys: KeySet, default_package: Built
) -> None:
    root, cache = trusting_root(tmp_path / "root", keys), tmp_path / "cache"
    run = install(root, cache, server.url + "main/")
    assert run.code == 0, run.err
    assert run.json()["release"] == default_package.metadata["kernel_release"]
    again = fetch(root, tmp_path / "dl", cache, server.url + "main/")
    assert again.code == 0, again.err
    index = requests(server.log(), "GET", "/main/index.json")
    assert [line[2] for line in index] == ["200", "304"], server.log()
    assert index[0][5] == 'inm="-"' and index[1][5] != 'inm="-"'  # the remembered ETag went back
    assert index[1][3] == "0"  # no body the second time
    assert len(requests(server.log(), "GET", "/main/packages/")) == 2


def test_a_dead_mirror_is_skipped_with_one_warning(server: Nginx, tmp_path: Path, keys: KeySet) -> None:
    root = trusting_root(tmp_path / "root", keys)
    dead = dead_url()
    run = install(root, tmp_path / "cache", dead, server.url + "main/")
    assert run.code == 0, run.err
    warnings = [line for line in run.err.splitlines() if line.startswith("distkernel: warning:")]
    assert len(warnings) == 1 and f"skipping mirror {dead}" in warnings[0], run.err
    assert "Traceback" not in run.err


def test_a_mirror_with_an_older_index_is_skipped_never_trusted(server: Nginx, tmp_path: Path, keys: KeySet) -> None:
    root, cache = trusting_root(tmp_path / "root", keys), tmp_path / "cache"
    assert fetch(root, tmp_path / "dl", cache, server.url + "main/").code == 0  # serial 3 is remembered
    run = install(root, cache, server.url + "old/", server.url + "main/")
    assert run.code == 0, run.err
    warnings = [line for line in run.err.splitlines() if line.startswith("distkernel: warning:")]
    assert len(warnings) == 1 and "serial 2 is older than serial 3" in warnings[0], run.err
    assert requests(server.log(), "GET", "/old/index.json")
    assert not requests(server.log(), "GET", "/old/packages/")  # nothing taken from the stale mirror
    only_old = install(trusting_root(tmp_path / "r2", keys), cache, server.url + "old/")
    assert only_old.code == 0, only_old.err  # a root that has not seen serial 3 takes serial 2


def test_a_cut_download_is_resumed_with_a_range_request(server: Nginx, www: Path, tmp_path: Path, keys: KeySet) -> None:
    root = trusting_root(tmp_path / "root", keys)
    size = int(str(index_entry(www / "main")["size"]))
    port = int(server.url.rsplit(":", 1)[1].strip("/"))
    with CuttingRelay(port, keep=size // 2) as relay:
        run = install(root, tmp_path / "cache", relay.url + "main/")
    assert run.code == 0, run.err
    assert relay.cuts == 1
    assert "resuming with a range request" in run.err, run.err
    packages = requests(server.log(), "GET", "/main/packages/")
    assert [line[2] for line in packages] == ["200", "206"], server.log()
    start = int(packages[1][4].removeprefix('range="bytes=').removesuffix('-"'))
    assert 0 < start < size and int(packages[1][3]) == size - start
