"""Hostile packages made by a generator (Hypothesis) from the real default package: a
metadata field set to a hostile value (with the manifest's metadata hash made to match,
as an attacker of an unsigned package would), a member added with a hostile name or
type, the manifest edited, the image replaced, the bytes cut or flipped. For each,
`verify` and `install` give the same verdict; a refusal is one line with exit 2 and
leaves the root and its surroundings byte for byte as they were; memory stays bounded.

The number of examples is fixed (DISTKERNEL_FUZZ_EXAMPLES, default 25) so CI's time is
known; Hypothesis' database keeps failing examples for the next run."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import zstandard
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.conftest import Built
from tests.hostile import Outcome, Tally, assert_refused, run_cli, snapshot

pytestmark = pytest.mark.kernel

EXAMPLES = int(os.environ.get("DISTKERNEL_FUZZ_EXAMPLES", "25"))
MEMORY_MB = 400  # the real package installs in well under this
TALLY = Tally("packages")

Members = list[tuple[tarfile.TarInfo, bytes]]

HOSTILE_STRINGS = [
    "../../../../ESCAPED",
    "6.1.192-x/../../../../ESCAPED",
    "6.1.192\noptions init=/bin/sh",
    "6.1\x00.192",
    "6.1.192\x1b[2J",
    "",
    ".",
    "..",
    "/abs",
    "a" * 5000,
    "arm64",
    "nosucharch",
    "6.1.192 distkernel",
]
HOSTILE_VALUES = [*HOSTILE_STRINGS, None, 0, -1, 2**70, [], {}, ["x"], {"a": "b"}, True]
HOSTILE_NAMES = [
    "../escaped",
    "/etc/escaped",
    "kernel/../../escaped",
    "modules/./x.ko",
    "modules//x.ko",
    "kernel/vmlinuz",
    "metadata.json",
    "modules/new\nline.ko",
    "modules/" + "d/" * 300 + "deep.ko",
    "modules/" + "n" * 300 + ".ko",
    "headers/include/asm/under-link.h",
]
LINK_TARGETS = ["../../../etc", "/etc/passwd", "../headers", "vmlinuz", "../../..", "a/../../b"]
TYPES = [tarfile.REGTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE, tarfile.FIFOTYPE, tarfile.DIRTYPE]


@dataclass(frozen=True)
class Mutation:
    what: str
    apply: Callable[[Members], Members]
    raw: Callable[[bytes], bytes] | None = None  # applied to the compressed package

    def __repr__(self) -> str:
        return self.what


def _manifest(members: Members) -> dict:  # type: ignore[type-arg]
    return json.loads(members[1][1])  # type: ignore[no-any-return]


def _set_member(members: Members, index: int, data: bytes) -> None:
    info = members[index][0]
    info.size = len(data)
    members[index] = (info, data)


def _rehash_metadata(members: Members) -> None:
    doc = _manifest(members)
    doc["metadata_sha256"] = hashlib.sha256(members[0][1]).hexdigest()
    _set_member(members, 1, json.dumps(doc, sort_keys=True, separators=(",", ":")).encode())


def metadata_field() -> st.SearchStrategy[Mutation]:
    keys = st.sampled_from(["kernel_release", "name", "variant", "arch", "image", "version", "modules", "sizes", "x"])

    def make(key: str, value: object) -> Mutation:
        def apply(members: Members) -> Members:
            doc = json.loads(members[0][1])
            doc[key] = value
            _set_member(members, 0, json.dumps(doc, sort_keys=True).encode())
            _rehash_metadata(members)
            return members

        return Mutation(f"metadata {key}={value!r:.60}", apply)

    return st.builds(make, keys, st.sampled_from(HOSTILE_VALUES) | st.text(max_size=40))


def added_member() -> st.SearchStrategy[Mutation]:
    def make(name: str, kind: bytes, target: str, listed: bool) -> Mutation:
        def apply(members: Members) -> Members:
            info = tarfile.TarInfo(name)
            info.type, info.mode = kind, 0o644
            data = b"hostile\n" if kind == tarfile.REGTYPE else b""
            info.size = len(data)
            if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE):
                info.linkname = target
            members.append((info, data))
            if listed and kind == tarfile.REGTYPE:
                doc = _manifest(members)
                doc["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "mode": 0o644}
                _set_member(members, 1, json.dumps(doc, sort_keys=True).encode())
            elif listed and kind == tarfile.SYMTYPE:
                doc = _manifest(members)
                doc["links"][name] = target
                _set_member(members, 1, json.dumps(doc, sort_keys=True).encode())
            return members

        return Mutation(f"member {name!r:.50} type {kind!r} -> {target!r} listed={listed}", apply)

    return st.builds(
        make, st.sampled_from(HOSTILE_NAMES), st.sampled_from(TYPES), st.sampled_from(LINK_TARGETS), st.booleans()
    )


def manifest_edit() -> st.SearchStrategy[Mutation]:
    def make(action: str, pick: int) -> Mutation:
        def apply(members: Members) -> Members:
            doc = _manifest(members)
            name = sorted(doc["files"])[pick % len(doc["files"])]
            if action == "drop":
                del doc["files"][name]
            elif action == "hash":
                doc["files"][name]["sha256"] = "0" * 64
            elif action == "size":
                doc["files"][name]["size"] += 1
            else:
                doc["files"][name]["mode"] = 0o4755
            _set_member(members, 1, json.dumps(doc, sort_keys=True).encode())
            return members

        return Mutation(f"manifest {action} #{pick}", apply)

    return st.builds(make, st.sampled_from(["drop", "hash", "size", "mode"]), st.integers(0, 10_000))


def image_swap() -> st.SearchStrategy[Mutation]:
    images = {
        "empty": b"",
        "text": b"not a kernel\n" * 100,
        "arm64 Image header": b"\x00" * 56 + b"ARM\x64" + b"\x00" * 4000,
        "gzip": b"\x1f\x8b\x08\x00" + b"\x00" * 4000,
    }

    def make(label: str) -> Mutation:
        def apply(members: Members) -> Members:
            data = images[label]
            index = next(i for i, (info, _) in enumerate(members) if info.name == "kernel/vmlinuz")
            _set_member(members, index, data)
            doc = _manifest(members)
            doc["files"]["kernel/vmlinuz"]["sha256"] = hashlib.sha256(data).hexdigest()
            doc["files"]["kernel/vmlinuz"]["size"] = len(data)
            _set_member(members, 1, json.dumps(doc, sort_keys=True).encode())
            return members

        return Mutation(f"image {label}", apply)

    return st.builds(make, st.sampled_from(sorted(images)))


def raw_damage() -> st.SearchStrategy[Mutation]:
    def make(action: str, where: float) -> Mutation:
        def raw(data: bytes) -> bytes:
            at = int(len(data) * where)
            if action == "cut":
                return data[:at]
            return data[:at] + bytes([data[at] ^ 0x5A]) + data[at + 1 :] if at < len(data) else data

        return Mutation(f"bytes {action} at {where:.3f}", lambda m: m, raw)

    return st.builds(make, st.sampled_from(["cut", "flip"]), st.floats(0.0, 0.999))


MUTATIONS = st.one_of(metadata_field(), added_member(), manifest_edit(), image_swap(), raw_damage())


_BASE: list[Members] = []


@pytest.fixture(scope="module")
def base_members(default_package: Built) -> None:
    """The real package's members, read once (kept out of the test's arguments, whose
    repr Hypothesis prints)."""
    if _BASE:
        return
    with (
        open(default_package.package, "rb") as f,
        tarfile.open(fileobj=zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True), mode="r|") as tar,
    ):
        _BASE.append([(info, tar.extractfile(info).read() if info.isfile() else b"") for info in tar])  # type: ignore[union-attr]


def _pack(members: Members, out: Path, raw: Callable[[bytes], bytes] | None) -> Path:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    packed = zstandard.ZstdCompressor(level=1).compress(buf.getvalue())
    out.write_bytes(raw(packed) if raw else packed)
    return out


def _no_traceback(o: Outcome, mutation: Mutation) -> None:
    assert "Traceback" not in o.err, (mutation, o.err)
    assert o.code in (0, 2), (mutation, o.code, o.err[-2000:])
    assert o.max_rss_mb < MEMORY_MB, o.max_rss_mb


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # shrinking a 10 MB package costs minutes
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)
@given(mutation=MUTATIONS)
@pytest.mark.usefixtures("base_members")
def test_generated_hostile_packages(mutation: Mutation, tmp_path_factory: pytest.TempPathFactory) -> None:
    work = tmp_path_factory.mktemp("hostile")
    members = [(_copy(info), data) for info, data in _BASE[0]]
    pkg = _pack(mutation.apply(members), work / "qemu-minimal-6.1.192-distkernel-x86_64.tar.zst", mutation.raw)
    (work / "outside").mkdir()
    (work / "outside/canary").write_text("must stay\n")
    root = work / "root"
    (root / "boot").mkdir(parents=True)
    (root / "etc").mkdir()
    (root / "etc/machine-id").write_text("0123456789abcdef0123456789abcdef\n")
    before = snapshot(work)

    verify = run_cli("verify", pkg)
    install = run_cli("install", pkg, "--root", root, "--initramfs", "none", "--layout", "plain")
    for o in (verify, install):
        _no_traceback(o, mutation)
    after = snapshot(work)
    assert {k: v for k, v in after.items() if not k.startswith("root")} == {
        k: v for k, v in before.items() if not k.startswith("root")
    }, f"{mutation}: written outside the root"
    assert (verify.code == 0) == (install.code == 0), (mutation, verify.err, install.err)
    if install.code == 2:
        assert_refused(install)
        assert_refused(verify)
        assert after == before, f"{mutation}: a refusal changed the root"
        TALLY.add("refused")
    else:
        assert run_cli("list", "--root", root).code == 0
        TALLY.add("accepted-and-correct")


def _copy(info: tarfile.TarInfo) -> tarfile.TarInfo:
    new = tarfile.TarInfo(info.name)
    for attr in ("size", "mode", "type", "linkname", "uid", "gid", "uname", "gname", "mtime", "devmajor", "devminor"):
        setattr(new, attr, getattr(info, attr))
    new.pax_headers = dict(info.pax_headers)
    return new
