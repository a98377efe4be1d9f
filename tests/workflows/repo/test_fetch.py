"""The binhost end to end over real HTTP: fetch exactly what was asked for, and refuse
hostile input (tampered index or package, replayed older index, truncated download,
a path outside the repo) with nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from distkernel.build.package.format import canonical_json
from distkernel.build.trust.gate import TRUSTED_DIR
from distkernel.build.trust.keys import PACKAGE_KEY, PACKAGE_PUB, KeySet
from distkernel.build.trust.signing import signer
from distkernel.workflows.repo.fetch import ROOT_INDEXES
from distkernel.workflows.repo.index import INDEX, add_packages
from tests.build.trust.helpers import tiny_package
from tests.conftest import Run, assert_user_facing_error, cli, env_with


def fetch(url: str, spec: str, out: Path, keys: KeySet, cache: Path, *extra: str) -> Run:
    env = env_with(DISTKERNEL_CACHE=str(cache))
    return cli("fetch", spec, "--from", url, "--key", keys.path(PACKAGE_PUB), "--out", out, "--json", *extra, env=env)


def test_fetch_picks_name_version_arch_and_variant(url: str, tmp_path: Path, keys: KeySet) -> None:
    out, cache = tmp_path / "out", tmp_path / "cache"
    newest = fetch(url, "tiny", out, keys, cache, "--arch", "x86_64")
    assert newest.code == 0, newest.err
    assert Path(newest.json()["package"]).name == "tiny-6.1.8-tiny-x86_64.tar.zst"
    older = fetch(url, "tiny@6.1.7-tiny", out, keys, cache, "--arch", "x86_64").json()
    assert Path(older["package"]).name == "tiny-6.1.7-tiny-x86_64.tar.zst"
    variant = fetch(url, "tiny+dracut", out, keys, cache, "--arch", "x86_64").json()
    assert Path(variant["package"]).name == "tiny-6.1.8-tiny-x86_64+dracut.tar.zst"
    arm = fetch(url, "tiny", out, keys, cache, "--arch", "arm64").json()
    assert Path(arm["package"]).name == "tiny-6.1.8-tiny-arm64.tar.zst"
    assert cli("verify", arm["package"], "--key", keys.path(PACKAGE_PUB)).code == 0


@pytest.mark.parametrize(
    ("spec", "arch"),
    [("tiny@6.1.9", "x86_64"), ("tiny+nosuch", "x86_64"), ("tiny@6.1.7-tiny", "arm64"), ("other", "x86_64")],
)
def test_no_match_says_so_and_never_falls_back(url: str, tmp_path: Path, keys: KeySet, spec: str, arch: str) -> None:
    out = tmp_path / "out"
    run = fetch(url, spec, out, keys, tmp_path / "cache", "--arch", arch)
    assert_user_facing_error(run, 2, "no package", "not falling back")
    assert not out.exists() or not any(out.iterdir())


def test_fetch_needs_a_trusted_key(url: str, tmp_path: Path) -> None:
    run = cli("fetch", "tiny", "--from", url, "--out", tmp_path / "out", env=env_with(DISTKERNEL_CACHE=str(tmp_path)))
    assert_user_facing_error(run, 2, "no trusted key")


def assert_refused(run: Run, out: Path, *needles: str) -> None:
    assert_user_facing_error(run, 2, *needles)
    assert not out.exists() or not any(out.iterdir()), list(out.iterdir())


def test_tampered_index_is_refused(url: str, repo: Path, tmp_path: Path, keys: KeySet) -> None:
    doc = json.loads((repo / INDEX).read_text())
    doc["signed"]["packages"][0]["sha256"] = "0" * 64
    (repo / INDEX).write_bytes(canonical_json(doc))
    out = tmp_path / "out"
    assert_refused(fetch(url, "tiny", out, keys, tmp_path / "cache", "--arch", "x86_64"), out, "bad signature")


def test_index_from_another_key_is_refused(url: str, tmp_path: Path, other_keys: KeySet) -> None:
    out = tmp_path / "out"
    run = fetch(url, "tiny", out, other_keys, tmp_path / "cache", "--arch", "x86_64")
    assert_refused(run, out, "not trusted")


def test_tampered_package_is_refused(url: str, repo: Path, tmp_path: Path, keys: KeySet) -> None:
    target = repo / "packages" / "tiny-6.1.8-tiny-x86_64.tar.zst"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    out = tmp_path / "out"
    assert_refused(fetch(url, "tiny", out, keys, tmp_path / "cache", "--arch", "x86_64"), out, "sha256 differs")


def test_truncated_download_is_refused(url: str, repo: Path, tmp_path: Path, keys: KeySet) -> None:
    target = repo / "packages" / "tiny-6.1.8-tiny-x86_64.tar.zst"
    target.write_bytes(target.read_bytes()[:-200])
    out = tmp_path / "out"
    assert_refused(fetch(url, "tiny", out, keys, tmp_path / "cache", "--arch", "x86_64"), out, "truncated")


def test_older_index_replayed_is_refused(url: str, repo: Path, tmp_path: Path, keys: KeySet) -> None:
    out, cache = tmp_path / "out", tmp_path / "cache"
    old = (repo / INDEX).read_bytes()
    add_packages(repo, [tiny_package(tmp_path / "p5", key=keys.path(PACKAGE_KEY), release="6.1.9-tiny")])
    assert fetch(url, "tiny@6.1.9-tiny", tmp_path / "first", keys, cache, "--arch", "x86_64").code == 0
    (repo / INDEX).write_bytes(old)  # a mirror serving yesterday's (validly signed) index
    assert_refused(fetch(url, "tiny", out, keys, cache, "--arch", "x86_64"), out, "older than serial", "replayed")


def test_index_naming_a_path_outside_the_repo_is_refused(url: str, repo: Path, tmp_path: Path, keys: KeySet) -> None:
    (tmp_path / "secret.tar.zst").write_bytes(b"not for you")
    doc = json.loads((repo / INDEX).read_text())
    signed = doc["signed"]
    signed["serial"] += 1
    for entry in signed["packages"]:
        entry["path"] = "packages/../../secret.tar.zst"
    sign, _ = signer(keys.path(PACKAGE_KEY))  # even validly signed: the repo key leaked or a bug
    body = canonical_json(signed)
    (repo / INDEX).write_bytes(canonical_json({"signed": signed, "signature": json.loads(sign(body))}))
    out = tmp_path / "out"
    assert_refused(fetch(url, "tiny", out, keys, tmp_path / "cache", "--arch", "x86_64"), out, "not a package file")


def test_server_serves_only_the_index_and_packages(url: str, repo: Path) -> None:
    import urllib.error
    import urllib.request

    with urllib.request.urlopen(url + INDEX) as r:
        assert json.loads(r.read())["signed"]["serial"] == 2
    for path in (".distkernel-repo.json", "", "packages/", "../etc/passwd"):
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(url + path)
        assert e.value.code == 404, path


def installed_files(root: Path) -> list[str]:
    """What is in the root besides what an earlier successful fetch remembers (the serials,
    the index with its ETag) and empty folders."""
    remembered = root / ROOT_INDEXES
    return sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and p.name != "repo-serials.json" and p.parent != remembered
    )


@pytest.mark.parametrize(
    "attack", ["tampered-index", "tampered-package", "truncated", "outside", "replayed", "nomatch"]
)
def test_install_from_refuses_hostile_input_with_nothing_installed(
    url: str, repo: Path, tmp_path: Path, keys: KeySet, attack: str
) -> None:
    root = tmp_path / "root"
    (root / TRUSTED_DIR).mkdir(parents=True)
    (root / TRUSTED_DIR / "repo.pub").write_bytes(keys.path(PACKAGE_PUB).read_bytes())
    target = repo / "packages" / "tiny-6.1.8-tiny-x86_64.tar.zst"
    doc = json.loads((repo / INDEX).read_text())
    spec = "tiny"
    if attack == "tampered-index":
        doc["signed"]["packages"][1]["size"] += 1
        (repo / INDEX).write_bytes(canonical_json(doc))
    elif attack == "tampered-package":
        data = bytearray(target.read_bytes())
        data[100] ^= 1
        target.write_bytes(bytes(data))
    elif attack == "truncated":
        target.write_bytes(target.read_bytes()[:-50])
    elif attack == "outside":
        doc["signed"]["packages"][1]["path"] = "../../../etc/passwd"
        body = canonical_json(doc["signed"])
        doc["signature"] = json.loads(signer(keys.path(PACKAGE_KEY))[0](body))
        (repo / INDEX).write_bytes(canonical_json(doc))
    elif attack == "replayed":
        old = (repo / INDEX).read_bytes()
        add_packages(repo, [])
        env = env_with(DISTKERNEL_CACHE=str(tmp_path / "cache"))
        # A fetch that succeeds remembers serial 3 in the root (a refused one writes nothing).
        first = cli(
            "fetch", "tiny", "--from", url, "--root", root, "--out", tmp_path / "dl", "--arch", "x86_64", env=env
        )
        assert first.code == 0, first.err
        (repo / INDEX).write_bytes(old)
    else:
        spec = "tiny+nosuch"
    env = env_with(DISTKERNEL_CACHE=str(tmp_path / "cache"))
    run = cli("install", spec, "--from", url, "--root", root, "--layout", "plain", env=env)
    assert_user_facing_error(run, 2)
    assert installed_files(root) == ["etc/distkernel/trusted.d/repo.pub"], installed_files(root)


def test_every_mirror_failing_is_one_error_naming_each(url: str, tmp_path: Path, keys: KeySet) -> None:
    from tests.workflows.repo.nginx import dead_url

    dead1, dead2, out = dead_url(), dead_url(), tmp_path / "out"
    run = fetch(dead1, "tiny", out, keys, tmp_path / "cache", "--from", dead2, "--arch", "x86_64")
    assert run.code == 2 and "Traceback" not in run.err
    warning, error, *details = run.err.strip().splitlines()
    assert warning.startswith(f"distkernel: warning: skipping mirror {dead1}") and f"trying {dead2}" in warning
    assert error.startswith("distkernel: error: none of the 2 mirrors served tiny")
    assert [dead1 in details[0], dead2 in details[1]] == [True, True], run.err
    assert not out.exists()


def test_a_root_s_own_settings_file_lists_its_mirrors(url: str, tmp_path: Path, keys: KeySet) -> None:
    from tests.workflows.repo.nginx import dead_url

    root = tmp_path / "root"
    (root / TRUSTED_DIR).mkdir(parents=True)
    (root / TRUSTED_DIR / "repo.pub").write_bytes(keys.path(PACKAGE_PUB).read_bytes())
    (root / "etc/distkernel/distkernel.toml").write_text(f'binhost = ["{dead_url()}", "{url}"]\n')
    env = env_with(DISTKERNEL_CACHE=str(tmp_path / "cache"))
    run = cli("install", "tiny", "--root", root, "--layout", "plain", "--dry-run", env=env)
    assert "skipping mirror" in run.err and "trying " + url in run.err, run.err
    assert (root / "var/cache/distkernel/packages/tiny-6.1.8-tiny-x86_64.tar.zst").is_file()


@pytest.mark.parametrize("value", ["[]", "3", '["", "x"]'])
def test_a_bad_binhost_setting_is_one_line(tmp_path: Path, value: str) -> None:
    settings = tmp_path / "distkernel.toml"
    settings.write_text(f"binhost = {value}\n")
    run = cli("list", "--root", tmp_path, env=env_with(DISTKERNEL_CONFIG=str(settings)))
    assert_user_facing_error(run, 2, str(settings), "binhost: must be a URL or a non-empty list of URLs")
