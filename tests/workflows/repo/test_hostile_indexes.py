"""Hostile binhost indexes made by a generator (Hypothesis): an entry field or the serial
set to a hostile value and signed with the key the root trusts (a binhost that is broken
or malicious), the signature damaged, the document's shape changed, the bytes cut. The
client installs from a real HTTP server on 127.0.0.1; it either installs what it asked
for, or refuses with one line (exit 2) and leaves the root and its surroundings byte for
byte as they were."""

from __future__ import annotations

import functools
import http.server
import json
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from distkernel.build.package.format import canonical_json
from distkernel.build.trust.gate import TRUSTED_DIR
from distkernel.build.trust.keys import PACKAGE_KEY, PACKAGE_PUB, KeySet
from distkernel.build.trust.signing import signer
from distkernel.workflows.repo.index import INDEX, add_packages, init_repo
from tests.build.trust.helpers import tiny_package
from tests.conftest import env_with
from tests.hostile import Tally, assert_refused, run_cli, snapshot

EXAMPLES = int(os.environ.get("DISTKERNEL_FUZZ_EXAMPLES", "25"))
TALLY = Tally("indexes")
FIELDS = ["name", "variant", "arch", "kernel_release", "version", "path", "size", "sha256"]
FIELDS += ["headers", "headers.path", "headers.size", "headers.sha256"]  # the headers part of the entry
VALUES: list[object] = [
    "../../../../escaped",
    "packages/../../../etc/passwd",
    "/etc/passwd",
    "tiny\nx",
    "tiny\x00",
    "",
    "x" * 100_000,
    -1,
    0,
    2**62,
    None,
    True,
    [],
    {},
    "0" * 64,
]


@dataclass(frozen=True)
class Edit:
    what: str
    apply: Callable[[dict, KeySet], bytes]  # type: ignore[type-arg]

    def __repr__(self) -> str:
        return self.what


def _signed(doc: dict, keys: KeySet) -> bytes:  # type: ignore[type-arg]
    body = canonical_json(doc["signed"])
    doc["signature"] = json.loads(signer(keys.path(PACKAGE_KEY))[0](body))
    return canonical_json(doc)


def entry_field() -> st.SearchStrategy[Edit]:
    def make(field: str, value: object) -> Edit:
        def apply(doc: dict, keys: KeySet) -> bytes:  # type: ignore[type-arg]
            for entry in doc["signed"]["packages"]:
                outer, _, inner = field.partition(".")
                if inner:
                    entry[outer][inner] = value
                else:
                    entry[field] = value
            return _signed(doc, keys)

        return Edit(f"entry {field}={value!r:.40}", apply)

    return st.builds(make, st.sampled_from(FIELDS), st.sampled_from(VALUES) | st.text(max_size=20))


def serial() -> st.SearchStrategy[Edit]:
    def make(value: object) -> Edit:
        def apply(doc: dict, keys: KeySet) -> bytes:  # type: ignore[type-arg]
            doc["signed"]["serial"] = value
            return _signed(doc, keys)

        return Edit(f"serial={value!r:.40}", apply)

    return st.builds(make, st.sampled_from([-1, 0, 2**70, "3", None, True, 1.5]))


def shape() -> st.SearchStrategy[Edit]:
    def deep(doc: dict, keys: KeySet) -> bytes:  # type: ignore[type-arg]
        doc["signed"]["packages"] = json.loads("[" * 500 + "]" * 500)
        return _signed(doc, keys)

    def deeper(doc: dict, keys: KeySet) -> bytes:  # type: ignore[type-arg]
        """Deeper than any JSON parser recurses: made as text, so unsigned."""
        return b'{"signed": {"format": 1, "serial": 9, "packages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}"

    def many(doc: dict, keys: KeySet) -> bytes:  # type: ignore[type-arg]
        doc["signed"]["packages"] = doc["signed"]["packages"] * 50_000
        return _signed(doc, keys)

    def extra(doc: dict, keys: KeySet) -> bytes:  # type: ignore[type-arg]
        doc["signed"]["packages"][0]["extra"] = "x"
        return _signed(doc, keys)

    edits = {
        "packages nested 500 deep": deep,
        "packages nested 100000 deep": deeper,
        "100000 entries": many,
        "an unknown entry key": extra,
        "signature of other bytes": lambda doc, keys: canonical_json(
            {**doc, "signature": json.loads(signer(keys.path(PACKAGE_KEY))[0](b"other"))}
        ),
        "no signature": lambda doc, keys: canonical_json({"signed": doc["signed"]}),
        "not json": lambda doc, keys: b"\xff\xfe not json",
        "cut in half": lambda doc, keys: canonical_json(doc)[: len(canonical_json(doc)) // 2],
        "empty": lambda doc, keys: b"",
    }
    return st.sampled_from(sorted(edits)).map(lambda name: Edit(name, edits[name]))


EDITS = st.one_of(entry_field(), serial(), shape())


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def binhost(tmp_path_factory: pytest.TempPathFactory, keys: KeySet) -> Iterator[tuple[Path, str, bytes]]:
    """A repo with one package, served by a plain HTTP server on 127.0.0.1."""
    top = tmp_path_factory.mktemp("hostile-binhost")
    repo = top / "repo"
    init_repo(repo, keys.path(PACKAGE_KEY))
    add_packages(repo, [tiny_package(top / "p", key=keys.path(PACKAGE_KEY), release="6.1.7-tiny")])
    handler = functools.partial(_Quiet, directory=str(repo))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield repo, f"http://127.0.0.1:{server.server_address[1]}", (repo / INDEX).read_bytes()
    finally:
        server.shutdown()


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edit=EDITS)
def test_generated_hostile_indexes(
    edit: Edit, binhost: tuple[Path, str, bytes], keys: KeySet, tmp_path_factory: pytest.TempPathFactory
) -> None:
    repo, url, good = binhost
    (repo / INDEX).write_bytes(edit.apply(json.loads(good), keys))
    work = tmp_path_factory.mktemp("client")
    root = work / "root"
    (root / TRUSTED_DIR).mkdir(parents=True)
    (root / TRUSTED_DIR / "repo.pub").write_bytes(keys.path(PACKAGE_PUB).read_bytes())
    (root / "etc/machine-id").write_text("0123456789abcdef0123456789abcdef\n")
    (work / "outside").mkdir()
    (work / "outside/canary").write_text("must stay\n")
    before = snapshot(work)
    env = env_with(DISTKERNEL_CACHE=str(work / "cache"))
    run = run_cli(
        "install", "tiny", "--from", url, "--root", root, "--layout", "plain", "--initramfs", "none",
        env=env,
    )  # fmt: skip
    assert "Traceback" not in run.err, (edit, run.err)
    after = {k: v for k, v in snapshot(work).items() if not k.startswith("cache")}
    before = {k: v for k, v in before.items() if not k.startswith("cache")}
    assert {k: v for k, v in after.items() if not k.startswith("root")} == {
        k: v for k, v in before.items() if not k.startswith("root")
    }, f"{edit}: written outside the root"
    if run.code == 0:
        assert run_cli("list", "--root", root).code == 0
        TALLY.add("accepted-and-correct")
    else:
        assert_refused(run)
        assert after == before, f"{edit}: a refused fetch changed the root"
        TALLY.add("refused")
