"""The closed schema of metadata.json and manifest.json: every key known, every value
typed and bounded, names and releases in their grammar (format.py), the arch one of
core/data/arches.toml. The bytes must also be exactly what the writer makes
(`canonical_json`): one spelling per document, so no two JSON parsers can read a
package differently (duplicate keys, NaN, odd numbers)."""

from __future__ import annotations

import json
import re
from typing import Any

from distkernel.build.package.format import (
    FORMAT,
    IMAGE,
    MANIFEST,
    METADATA,
    PAYLOAD_TOPS,
    FileEntry,
    Manifest,
    Metadata,
    canonical_json,
    module_name_problem,
    name_problem,
    release_problem,
)
from distkernel.core.arch import known_arches

MAX_METADATA = 1 << 20
MAX_MANIFEST = 64 << 20
MAX_SIGNATURE = 64 << 10
MAX_TEXT = 4096
MAX_LIST = 100_000
MAX_INT = 1 << 62
HEX64 = re.compile(r"[0-9a-f]{64}")
TEXT = re.compile(r"[^\x00-\x1f\x7f]*")


class SchemaError(ValueError):
    """What is wrong, naming the document and the field."""


def _load(raw: bytes, doc_name: str) -> Any:
    def no_constant(name: str) -> None:
        raise ValueError(f"{name} is not JSON")

    try:
        return json.loads(raw.decode("utf-8"), parse_constant=no_constant)
    except (ValueError, RecursionError) as e:
        raise SchemaError(f"{doc_name} is corrupt (not valid JSON: {str(e)[:80]})") from None


def _canonical(raw: bytes, doc_name: str, spelled: Any) -> None:
    """The document must be spelled exactly as the writer spells it."""
    try:
        same = spelled() == raw
    except UnicodeEncodeError:  # a lone surrogate from a \\ud800 escape
        same = False
    if not same:
        raise SchemaError(f"{doc_name} is corrupt (not in the canonical form distkernel writes: sorted keys, indent 1)")


def _object(value: Any, where: str, required: frozenset[str], optional: frozenset[str] = frozenset()) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SchemaError(f"{where}: must be an object")
    unknown = sorted(set(value) - required - optional)
    if unknown:
        raise SchemaError(f"{where}: unknown key {unknown[0]!r}")
    missing = sorted(required - set(value))
    if missing:
        raise SchemaError(f"{where}: missing key {missing[0]!r}")
    return value


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or len(value) > MAX_TEXT or not TEXT.fullmatch(value):
        raise SchemaError(f"{where}: must be a string of at most {MAX_TEXT} characters without control characters")
    return value


def _int(value: Any, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_INT:
        raise SchemaError(f"{where}: must be a non-negative integer")
    return value


def _hex(value: Any, where: str) -> str:
    if not isinstance(value, str) or not HEX64.fullmatch(value):
        raise SchemaError(f"{where}: must be a sha256 (64 lowercase hex digits)")
    return value


def _grammar(value: Any, where: str, problem: Any) -> str:
    why = problem(value) if isinstance(value, str) else "not a string"
    if why:
        raise SchemaError(f"{where}: {why}")
    return str(value)


def _texts(value: Any, where: str, keys: frozenset[str] | None = None) -> dict[str, str]:
    """An object of strings: known keys, or any plain keys when `keys` is None."""
    if keys is not None:
        _object(value, where, frozenset(), keys)
    elif not isinstance(value, dict) or len(value) > 64:
        raise SchemaError(f"{where}: must be an object of at most 64 strings")
    return {_text(k, f"{where} key"): _text(v, f"{where}.{k}") for k, v in value.items()}


def _modules(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or len(value) > MAX_LIST:
        raise SchemaError(f"{where}: must be a list of module names")
    return [_grammar(m, f"{where}[{i}]", module_name_problem) for i, m in enumerate(value)]


def _extra(value: Any) -> dict[str, Any]:
    where = f"{METADATA} extra"
    doc = _object(value, where, frozenset(), frozenset({"signers", "test", "config"}))
    out: dict[str, Any] = {}
    if "signers" in doc:
        signers = _object(
            doc["signers"], f"{where}.signers", frozenset(), frozenset({"package", "modules", "secureboot"})
        )
        out["signers"] = {
            k: _text(v, f"{where}.signers.{k}") if k == "package" else _texts(v, f"{where}.signers.{k}")
            for k, v in signers.items()
        }
    if "test" in doc:
        test = _object(doc["test"], f"{where}.test", frozenset(), frozenset({"modules"}))
        out["test"] = {k: _modules(v, f"{where}.test.{k}") for k, v in test.items()}
    if "config" in doc:
        config = _object(doc["config"], f"{where}.config", frozenset(), frozenset({"base", "requested", "missed"}))
        out["config"] = {
            k: _text(v, f"{where}.config.{k}") if k == "base" else _int(v, f"{where}.config.{k}")
            for k, v in config.items()
        }
    return out


METADATA_KEYS = frozenset(Metadata.__dataclass_fields__)
SIZE_KEYS = frozenset({"files", *PAYLOAD_TOPS})


def parse_metadata(raw: bytes) -> Metadata:
    """metadata.json's bytes as Metadata, or SchemaError naming the field."""
    if len(raw) > MAX_METADATA:
        raise SchemaError(f"{METADATA}: larger than {MAX_METADATA} bytes")
    loaded = _load(raw, METADATA)
    _canonical(raw, METADATA, lambda: canonical_json(loaded))
    doc = _object(loaded, f"{METADATA} is corrupt", METADATA_KEYS)
    w = f"{METADATA} "
    if doc["format"] != FORMAT or isinstance(doc["format"], bool):
        raise SchemaError(f"{w}format: {doc['format']!r} is not {FORMAT}; use the distkernel that wrote it")
    arch = doc["arch"]
    if not isinstance(arch, str) or arch not in known_arches():
        raise SchemaError(f"{w}arch: {str(arch)[:40]!r} is not one of {', '.join(known_arches())}")
    if doc["image"] != IMAGE:
        raise SchemaError(f"{w}image: must be {IMAGE!r}")
    sizes = _object(doc["sizes"], f"{w}sizes", frozenset({"files"}), SIZE_KEYS)
    return Metadata(
        name=_grammar(doc["name"], f"{w}name", name_problem),
        variant=_grammar(doc["variant"], f"{w}variant", name_problem) if doc["variant"] != "" else "",
        kernel_release=_grammar(doc["kernel_release"], f"{w}kernel_release", release_problem),
        version=_grammar(doc["version"], f"{w}version", release_problem),
        arch=arch,
        recipe_sha256=_hex(doc["recipe_sha256"], f"{w}recipe_sha256"),
        config_sha256=_hex(doc["config_sha256"], f"{w}config_sha256"),
        source=_texts(doc["source"], f"{w}source", frozenset({"origin", "key", "patches"})),
        toolchain=_texts(doc["toolchain"], f"{w}toolchain", frozenset({"gcc", "binutils", "make"})),
        build_date=_int(doc["build_date"], f"{w}build_date"),
        sizes={k: _int(v, f"{w}sizes.{k}") for k, v in sizes.items()},
        image=IMAGE,
        modules=_modules(doc["modules"], f"{w}modules"),
        extra=_extra(doc["extra"]),
        format=FORMAT,
        distkernel=_text(doc["distkernel"], f"{w}distkernel"),
    )


ENTRY_KEYS = frozenset({"sha256", "size", "mode"})


def parse_manifest(raw: bytes) -> Manifest:
    """manifest.json's bytes as a Manifest, or SchemaError. Paths and link targets are
    checked as a whole by declared.check_declared."""
    if len(raw) > MAX_MANIFEST:
        raise SchemaError(f"{MANIFEST}: larger than {MAX_MANIFEST} bytes")
    manifest_keys = frozenset({"format", "metadata_sha256", "files", "links"})
    doc = _object(_load(raw, MANIFEST), f"{MANIFEST} is corrupt", manifest_keys)
    if doc["format"] != FORMAT or isinstance(doc["format"], bool):
        raise SchemaError(f"{MANIFEST} format: {doc['format']!r} is not {FORMAT}")
    files, links = doc["files"], doc["links"]
    if not isinstance(files, dict) or not isinstance(links, dict):
        raise SchemaError(f"{MANIFEST}: files and links must be objects")
    entries = {}
    for path, e in files.items():
        if type(e) is not dict or e.keys() != ENTRY_KEYS:
            raise SchemaError(f"{MANIFEST} files[{path[:80]!r}]: must be an object of sha256, size and mode")
        sha256, size, mode = e["sha256"], e["size"], e["mode"]
        if type(sha256) is not str or not HEX64.fullmatch(sha256):
            raise SchemaError(f"{MANIFEST} files[{path[:80]!r}] sha256: must be 64 lowercase hex digits")
        if type(size) is not int or type(mode) is not int or not (0 <= size <= MAX_INT and 0 <= mode <= 0o7777):
            raise SchemaError(f"{MANIFEST} files[{path[:80]!r}]: size and mode must be small non-negative integers")
        entries[path] = FileEntry(sha256, size, mode)
    for path, target in links.items():
        if type(target) is not str:
            raise SchemaError(f"{MANIFEST} links[{path[:80]!r}]: must be a string")
    manifest = Manifest(_hex(doc["metadata_sha256"], f"{MANIFEST} metadata_sha256"), entries, dict(links))
    _canonical(raw, MANIFEST, manifest.to_bytes)
    return manifest
