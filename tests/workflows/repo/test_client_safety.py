"""The binhost client against a hostile or broken server and damaged local state:
replay protection keyed by the repo's index key (not the URL string), an overall
deadline on every download, a damaged serials file failing closed, nothing written
into the root by a refused fetch (checked byte for byte), and error texts that name
only options the command has."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from distkernel.build.trust.gate import TRUSTED_DIR
from distkernel.build.trust.keys import PACKAGE_KEY, PACKAGE_PUB, KeySet
from distkernel.core.paths import SERIALS
from distkernel.workflows.repo.index import INDEX, add_packages
from tests.build.trust.helpers import tiny_package
from tests.conftest import Run, assert_user_facing_error, cli, env_with
from tests.hostile import snapshot
from tests.workflows.repo.slow import SlowServer

PKG = "packages/tiny-6.1.8-tiny-x86_64.tar.zst"


def bounded_cli(*args: str | Path, env: dict[str, str], limit: float = 120) -> Run:
    """The real CLI, killed after `limit` seconds (a hang fails the test, never blocks it)."""
    argv = [sys.executable, "-m", "distkernel", *map(str, args)]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=limit, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail(f"distkernel {' '.join(map(str, args))} still waiting after {limit} s")
    return Run(proc.returncode, proc.stdout, proc.stderr)


def trusting_root(tmp_path: Path, keys: KeySet) -> Path:
    root = tmp_path / "root"
    (root / TRUSTED_DIR).mkdir(parents=True)
    (root / TRUSTED_DIR / "repo.pub").write_bytes(keys.path(PACKAGE_PUB).read_bytes())
    return root


def install_from(url: str, root: Path, tmp_path: Path, spec: str = "tiny", **env: str) -> Run:
    environ = env_with(DISTKERNEL_CACHE=str(tmp_path / "cache"), **env)
    return bounded_cli("install", spec, "--from", url, "--root", root, "--layout", "plain", env=environ)


def fetch_into(url: str, root: Path, tmp_path: Path, spec: str = "tiny") -> Run:
    env = env_with(DISTKERNEL_CACHE=str(tmp_path / "cache"))
    return bounded_cli(
        "fetch", spec, "--from", url, "--root", root, "--out", tmp_path / "dl", "--arch", "x86_64", env=env
    )


def test_replay_is_refused_whatever_url_reaches_the_same_binhost(
    url: str, repo: Path, tmp_path: Path, keys: KeySet
) -> None:
    root = trusting_root(tmp_path, keys)
    old = (repo / INDEX).read_bytes()
    add_packages(repo, [tiny_package(tmp_path / "p5", key=keys.path(PACKAGE_KEY), release="6.1.9-tiny")])
    first = fetch_into(url, root, tmp_path)
    assert first.code == 0, first.err
    (repo / INDEX).write_bytes(old)  # yesterday's validly signed index, served again
    port = url.rstrip("/").rsplit(":", 1)[1]
    for other in (f"http://127.0.0.1:{port}//", f"http://localhost:{port}", url):
        run = fetch_into(other, root, tmp_path)
        assert_user_facing_error(run, 2, "older than serial 3", "replayed")


@pytest.mark.parametrize(
    "damage", [b"{not json", b"[]", b'{"format": 2, "repos": {"x": 1}}', b'{"http://x/": {"serial": 9}}', b"\xff\xfe"]
)
def test_a_damaged_serials_file_fails_closed(url: str, repo: Path, tmp_path: Path, keys: KeySet, damage: bytes) -> None:
    root = trusting_root(tmp_path, keys)
    serials = root / SERIALS
    serials.parent.mkdir(parents=True)
    serials.write_bytes(damage)
    before = snapshot(root)
    run = install_from(url, root, tmp_path)
    assert_user_facing_error(run, 2, str(serials), "damaged", "delete it")
    assert len(run.err.strip().splitlines()) == 1
    assert snapshot(root) == before


@pytest.mark.parametrize(
    ("slow", "mode"), [(INDEX, "body"), (INDEX, "headers"), (PKG, "body")], ids=["index", "headers", "package"]
)
def test_a_stalled_server_is_refused_at_the_deadline_with_nothing_written(
    repo: Path, tmp_path: Path, keys: KeySet, slow: str, mode: str
) -> None:
    root = trusting_root(tmp_path, keys)
    before = snapshot(root)
    with SlowServer(repo, {slow: mode}) as server:
        run = install_from(server.url, root, tmp_path, DISTKERNEL_DOWNLOAD_DEADLINE="8")
    assert_user_facing_error(run, 2, f"{slow}: not downloaded within 8 s", "DISTKERNEL_DOWNLOAD_DEADLINE")
    assert snapshot(root) == before


def test_fetch_gives_up_on_a_stalled_server_too(repo: Path, tmp_path: Path, keys: KeySet) -> None:
    out = tmp_path / "out"
    env = env_with(DISTKERNEL_CACHE=str(tmp_path / "cache"), DISTKERNEL_DOWNLOAD_DEADLINE="8")
    with SlowServer(repo, {PKG: "body"}) as server:
        args = ("fetch", "tiny", "--from", server.url, "--key", keys.path(PACKAGE_PUB), "--out", out)
        run = bounded_cli(*args, "--arch", "x86_64", env=env)
    assert_user_facing_error(run, 2, f"{PKG}: not downloaded within 8 s")
    assert not out.exists()
    assert not (tmp_path / "cache" / "repos").exists()


def test_a_bad_deadline_setting_is_one_line(url: str, tmp_path: Path, keys: KeySet) -> None:
    root = trusting_root(tmp_path, keys)
    run = install_from(url, root, tmp_path, DISTKERNEL_DOWNLOAD_DEADLINE="soon")
    assert_user_facing_error(run, 2, "DISTKERNEL_DOWNLOAD_DEADLINE", "positive number")


@pytest.mark.parametrize("attack", ["nomatch", "tampered-package", "truncated", "unsigned", "replayed"])
def test_a_refused_install_from_writes_nothing_into_the_root(
    url: str, repo: Path, tmp_path: Path, keys: KeySet, attack: str
) -> None:
    root = trusting_root(tmp_path, keys)
    target = repo / PKG
    spec = "tiny"
    if attack == "nomatch":
        spec = "tiny+nosuch"
    elif attack == "tampered-package":
        data = bytearray(target.read_bytes())
        data[200] ^= 1
        target.write_bytes(bytes(data))
    elif attack == "truncated":
        target.write_bytes(target.read_bytes()[:-10])
    elif attack == "unsigned":  # the index (signed) names an unsigned package of the same bytes
        unsigned = tiny_package(tmp_path / "u", release="6.1.8-tiny")
        doc = json.loads((repo / INDEX).read_text())
        entry = next(e for e in doc["signed"]["packages"] if e["path"] == PKG)
        import hashlib

        entry["size"], entry["sha256"] = unsigned.stat().st_size, hashlib.sha256(unsigned.read_bytes()).hexdigest()
        target.write_bytes(unsigned.read_bytes())
        _resign(repo, doc, keys)
    else:
        old = (repo / INDEX).read_bytes()
        add_packages(repo, [])
        assert fetch_into(url, root, tmp_path).code == 0
        (repo / INDEX).write_bytes(old)
    before = snapshot(root)
    run = install_from(url, root, tmp_path, spec)
    assert_user_facing_error(run, 2)
    assert snapshot(root) == before


def _resign(repo: Path, doc: dict, keys: KeySet) -> None:  # type: ignore[type-arg]
    from distkernel.build.package.format import canonical_json
    from distkernel.build.trust.signing import signer

    doc["signed"]["serial"] += 1
    doc["signature"] = json.loads(signer(keys.path(PACKAGE_KEY))[0](canonical_json(doc["signed"])))
    (repo / INDEX).write_bytes(canonical_json(doc))


def options_of(command: str) -> set[str]:
    return set(re.findall(r"--[a-z][a-z-]+", cli(command, "--help").out))


def test_hints_name_only_options_the_command_has(url: str, tmp_path: Path, keys: KeySet, other_keys: KeySet) -> None:
    """install has no --key or --arch: its refusals say what to do in the root instead."""
    env = env_with(DISTKERNEL_CACHE=str(tmp_path / "cache"))
    bare = tmp_path / "bare"
    bare.mkdir()
    other = trusting_root(tmp_path / "o", other_keys)
    runs = {
        "install": [
            bounded_cli("install", "tiny", "--from", url, "--root", bare, env=env),
            bounded_cli("install", "tiny", "--from", url, "--root", other, env=env),
        ],
        "fetch": [
            bounded_cli("fetch", "tiny", "--from", url, "--out", tmp_path / "x", env=env),
            bounded_cli("fetch", "tiny", "--from", url, "--key", other_keys.path(PACKAGE_PUB), env=env),
        ],
    }
    for command, results in runs.items():
        known = options_of(command)
        for run in results:
            assert_user_facing_error(run, 2)
            named = set(re.findall(r"(?<![\w-])--[a-z][a-z-]+", run.err))
            assert named <= known, (command, named - known, run.err)
    assert "trusted.d" in runs["install"][0].err and "--key" not in runs["install"][0].err
