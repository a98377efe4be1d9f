"""The strict reader of TOML recipes: every table checked against its dataclass in
build/recipe_model.py (unknown keys, types, sizes, control characters, paths that must
exist and stay in the recipe's folder), then the values' own rules. Every error names
the file, the key and the line."""

from __future__ import annotations

import os
import re
import stat
import tomllib
import types
import typing
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

from distkernel.build.recipe_model import (
    CONTROL_RE,
    DISTRIBUTE,
    LOCALVERSION_RE,
    MAX_ITEMS,
    MAX_RECIPE,
    MAX_STRING,
    NAME_RE,
    PIN_RE,
    PSEUDO_FS,
    QUOTED_RE,
    SECTIONS,
    SHIPPED,
    SOURCE_KINDS,
    SYMBOL_RE,
    SYSTEM_DIRS,
    WHERE_KEYS,
    KernelSpec,
    Recipe,
    distcc_host_problem,
    find_line,
    normalize_symbol,
    normalize_value,
    resolve_ref,
    shipped_recipes,
)
from distkernel.core.arch import known_arches
from distkernel.core.cache import sha256_bytes
from distkernel.core.errors import UserError


class _Reader:
    def __init__(self, path: Path, text: str):
        self.path = path
        self.text = text

    def fail(self, table: str, key: str | None, message: str) -> UserError:
        where = f"{table}.{key}" if key else f"[{table}]"
        return UserError(f"{self.path}:{find_line(self.text, table, key)}: {where}: {message}")

    def section(self, table: str, cls: type, raw: Any) -> Any:
        if not isinstance(raw, dict):
            raise self.fail(table, None, "must be a table")
        hints = typing.get_type_hints(cls)
        known = {f.name: f for f in fields(cls) if "cli" not in f.metadata}
        for key in raw:
            if key not in known:
                raise self.fail(table, key, f"unknown key (known: {', '.join(sorted(known))})")
        values = {}
        for name, f in known.items():
            if name in raw:
                values[name] = self.value(table, name, hints[name], dict(f.metadata), raw[name])
            elif f.default is MISSING and f.default_factory is MISSING:
                raise self.fail(table, None, f"missing required key `{name}`")
        return cls(**values)

    def value(self, table: str, key: str, hint: Any, meta: dict[str, str], raw: Any) -> Any:
        origin = typing.get_origin(hint)
        if hint is bool or hint is int or hint is str:
            if type(raw) is not hint:
                raise self.fail(table, key, f"must be a {hint.__name__}, not {type(raw).__name__}")
            if isinstance(raw, str):
                self.check_string(table, key, raw)
            return raw
        if hint is Path or (origin is types.UnionType and Path in typing.get_args(hint)):
            if raw == "" and origin is types.UnionType:
                return None
            return self.path_value(table, key, meta, raw)
        if origin is tuple:
            if not isinstance(raw, list):
                raise self.fail(table, key, "must be a list")
            if len(raw) > MAX_ITEMS:
                raise self.fail(table, key, f"has {len(raw)} entries; at most {MAX_ITEMS}")
            item = typing.get_args(hint)[0]
            return tuple(self.value(table, key, item, meta, x) for x in raw)
        if origin is dict:
            return self.options(table, key, raw)
        raise AssertionError(f"recipe field type {hint} has no reader")

    def check_string(self, table: str, key: str, raw: str) -> None:
        if len(raw) > MAX_STRING:
            raise self.fail(table, key, f"a value of {len(raw)} characters; at most {MAX_STRING}")
        if CONTROL_RE.search(raw):
            raise self.fail(table, key, "holds a newline or another control character; remove it")

    def path_value(self, table: str, key: str, meta: dict[str, str], raw: Any) -> Path:
        if not isinstance(raw, str):
            raise self.fail(table, key, "must be a path string")
        self.check_string(table, key, raw)
        folder, ref = self.path.parent, raw
        if meta.get("inside") and raw.startswith(SHIPPED):
            folder, ref = shipped_recipes().resolve(), raw.removeprefix(SHIPPED).lstrip("/")
        path = (folder / ref).resolve()
        if meta.get("path") == "file" and any(path.is_relative_to(p) for p in PSEUDO_FS):
            raise self.fail(table, key, f"{_show(raw)} is a file of the running system, not a recipe input")
        if meta.get("inside") and not Path(ref).is_absolute() and not path.is_relative_to(folder):
            raise self.fail(
                table, key, f"{_show(raw)} leaves the recipe's folder; keep it there, or give an absolute path"
            )
        if (suffix := meta.get("suffix")) and not path.name.endswith(suffix):
            raise self.fail(table, key, f"{_show(raw)} is not a {suffix} file")
        kind = meta.get("path")
        if kind == "file" and not path.is_file():
            raise self.fail(table, key, f"file not found: {path}")
        if kind == "dir" and not path.is_dir():
            raise self.fail(table, key, f"folder not found: {path}")
        return path

    def options(self, table: str, key: str, raw: Any) -> dict[str, str]:
        if not isinstance(raw, dict):
            raise self.fail(table, key, "must be a table of CONFIG_NAME = value")
        if len(raw) > MAX_ITEMS:
            raise self.fail(
                table, key, f"has {len(raw)} entries; at most {MAX_ITEMS} (use a savedconfig or a fragment)"
            )
        out = {}
        for name, value in raw.items():
            if not SYMBOL_RE.match(name):
                raise self.fail(table, key, f"{_show(name, '`')} is not a Kconfig symbol name")
            if isinstance(value, str):
                self.check_string(table, key, value)
                if value.startswith('"') and value.endswith('"') and len(value) >= 2 and not QUOTED_RE.match(value):
                    raise self.fail(table, key, f'{name}: a quoted value must escape its inner quotes as \\"')
            normalized = normalize_value(value)
            if normalized is None:
                raise self.fail(table, key, f"{name}: value must be y/m/n, a number or a string")
            out[normalize_symbol(name)] = normalized
        return out


def _show(value: str, quote: str = "") -> str:
    """A value for an error message: short, and with control characters escaped."""
    shown = value if len(value) <= 60 else value[:57] + "..."
    return f"{quote}{shown}{quote}" if quote and shown.isprintable() else repr(shown)


def _read(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise UserError(f"{path}: not a regular file; a recipe is a .toml file")
            data = f.read(MAX_RECIPE + 1)
    except OSError as e:
        raise UserError(f"{path}: cannot read recipe: {e.strerror}") from None
    if len(data) > MAX_RECIPE:
        raise UserError(f"{path}: larger than {MAX_RECIPE >> 10} KiB; a recipe is a short file (use fragments)")
    return data


def load_recipe(path: Path) -> Recipe:
    try:
        path = Path(path).resolve()
    except (OSError, RuntimeError) as e:
        raise UserError(f"{_show(str(path))}: cannot resolve the recipe's path ({e})") from None
    data = _read(path)
    text = data.decode(errors="replace")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"{path}: not valid TOML: {e}") from None
    except RecursionError:
        raise UserError(f"{path}: not a recipe: arrays or tables nested too deeply") from None
    reader = _Reader(path, text)
    for table in raw:
        if table not in SECTIONS:
            raise reader.fail(table, None, f"unknown table (known: {', '.join(SECTIONS)})")
    for required in ("kernel", "config"):
        if required not in raw:
            raise UserError(f"{path}: missing table [{required}]")
    parts = {t: reader.section(t, cls, raw[t]) for t, cls in SECTIONS.items() if t in raw}
    recipe = Recipe(path=path, sha256=identity_sha256(data, text, raw), **parts)
    _check(reader, recipe)
    return recipe


def _check(reader: _Reader, recipe: Recipe) -> None:
    k = recipe.kernel
    for key in ("name", "variant"):
        value = getattr(k, key)
        if value and not NAME_RE.match(value):
            raise reader.fail(
                "kernel", key, f"{_show(value, '`')} may only hold letters, digits, '.', '_' and '-' (at most 64)"
            )
    if k.localversion and not LOCALVERSION_RE.match(k.localversion):
        raise reader.fail(
            "kernel",
            "localversion",
            f"{_show(k.localversion, '`')} may only hold letters, digits, '.', '_', '+', '~' and '-' (at most 64)",
        )
    if k.arch not in known_arches():
        raise reader.fail("kernel", "arch", f"unknown arch {_show(k.arch, '`')} (known: {', '.join(known_arches())})")
    if ":" not in k.source or k.source_kind not in SOURCE_KINDS:
        kinds = ", ".join(f"{x}:..." for x in SOURCE_KINDS)
        raise reader.fail("kernel", "source", f"{_show(k.source, '`')} must be one of {kinds}")
    if k.source_kind == "dir":
        _check_dir_source(reader, recipe)
    if k.source_kind in ("tarball", "url") and not re.fullmatch(r"[0-9a-f]{64}", k.sha256):
        raise reader.fail("kernel", "sha256", f"a {k.source_kind}: source needs its sha256 (64 hex digits)")
    _check_pin(reader, k)
    if k.source_kind in ("tarball", "dir"):
        where = resolve_ref(recipe, k.source_ref)
        exists = where.is_file() if k.source_kind == "tarball" else where.is_dir()
        if not exists:
            raise reader.fail("kernel", "source", f"{k.source_kind} not found: {where}")
    base_ref = recipe.config.base.removeprefix("file:")
    if recipe.base_file is not None and not Path(base_ref).is_absolute():  # noqa: SIM102 - one rule per if
        if not recipe.base_file.is_relative_to(recipe.folder):
            raise reader.fail(
                "config", "base", "file: leaves the recipe's folder; keep it there, or give an absolute path"
            )
    if not recipe.config.base and recipe.config.savedconfig is None:
        raise reader.fail("config", None, "needs `base` (or `savedconfig`)")
    if recipe.base_file is not None and not recipe.base_file.is_file():
        raise reader.fail("config", "base", f"file not found: {recipe.base_file}")
    if recipe.build.jobs < 0:
        raise reader.fail("build", "jobs", "must be 0 (one per core) or more")
    _check_distribute(reader, recipe)
    if (recipe.sign.secureboot_key is None) != (recipe.sign.secureboot_cert is None):
        raise reader.fail("sign", None, "secureboot_key and secureboot_cert go together: set both or neither")


def _check_distribute(reader: _Reader, recipe: Recipe) -> None:
    b = recipe.build
    if b.distribute not in DISTRIBUTE:
        raise reader.fail(
            "build", "distribute", f"unknown backend {_show(b.distribute, '`')} (known: {', '.join(DISTRIBUTE)})"
        )
    for word in b.hosts:
        if problem := distcc_host_problem(word):
            raise reader.fail("build", "hosts", problem)
    if b.hosts and b.distribute != "distcc":
        raise reader.fail(
            "build",
            "hosts",
            f'hosts are distcc\'s; with distribute = "{b.distribute}" remove them'
            + (" (icecream's scheduler picks the hosts)" if b.distribute == "icecream" else ""),
        )


def identity_sha256(data: bytes, text: str, raw: dict[str, Any]) -> str:
    """The recipe's sha256: of its bytes, less the lines of the [build] keys that only say
    where objects compile (distribute, hosts), so that moving a build to other hosts keeps
    its package key. When those lines cannot be cut out cleanly (an inline table, say),
    the whole file counts: a needless rebuild at worst, never a wrong cache hit."""
    build = raw.get("build")
    present = [k for k in WHERE_KEYS if isinstance(build, dict) and k in build]
    if not present:
        return sha256_bytes(data)
    assert isinstance(build, dict)
    lines = text.splitlines(keepends=True)
    drop: set[int] = set()
    for key in present:
        start = find_line(text, "build", key) - 1
        value = build[key]
        # A list may span lines (one host a line): the fewest lines that parse, bounded so
        # that a hostile recipe costs few parses.
        last = min(len(lines), start + 3 + (len(value) if isinstance(value, list) else 0))
        for end in range(start + 1, last + 1):
            try:
                piece = tomllib.loads("".join(lines[start:end]))
            except tomllib.TOMLDecodeError:
                continue
            if piece == {key: value}:
                drop.update(range(start, end))
            break
    kept = "".join(line for number, line in enumerate(lines) if number not in drop)
    expected = dict(raw, build={k: v for k, v in build.items() if k not in WHERE_KEYS})
    try:
        if tomllib.loads(kept) == expected:
            return sha256_bytes(kept.encode())
    except tomllib.TOMLDecodeError:
        pass
    return sha256_bytes(data)


def _check_pin(reader: _Reader, k: KernelSpec) -> None:
    if k.version and not PIN_RE.match(k.version):
        raise reader.fail(
            "kernel", "version", f"{_show(k.version, '`')} is not a version (like 6.1.192 or 6.12.117-1~deb12u1)"
        )
    if k.version and k.source_kind not in ("debian", "url"):
        raise reader.fail(
            "kernel", "version", f"only debian: and url: sources are pinned; remove it for {k.source_kind}:"
        )
    if k.source_kind == "debian" and k.sha256 and not re.fullmatch(r"[0-9a-f]{64}", k.sha256):
        raise reader.fail("kernel", "sha256", "the .deb's sha256 is 64 hex digits")
    for key in ("feed", "keyring"):
        if getattr(k, key) and k.source_kind != "url":
            raise reader.fail("kernel", key, f"only a url: source has a {key}; remove it")
    if k.feed and not re.match(r"^https?://", k.feed):
        raise reader.fail(
            "kernel", "feed", f"{_show(k.feed, '`')} must be an http:// or https:// URL of a releases.json"
        )
    if k.feed and not k.version:
        raise reader.fail("kernel", "feed", "a source that follows a feed pins its version; add kernel.version")


def _check_dir_source(reader: _Reader, recipe: Recipe) -> None:
    """`dir:` names a kernel tree, never a system folder: its files are walked for the key."""
    where = resolve_ref(recipe, recipe.kernel.source_ref)
    system = str(where) in SYSTEM_DIRS or any(where.is_relative_to(p) for p in PSEUDO_FS)
    if system:
        raise reader.fail(
            "kernel", "source", f"dir:{where} is a system folder, not a kernel tree; name the tree's own folder"
        )
    if where.is_dir() and not (where / "Makefile").is_file():
        raise reader.fail("kernel", "source", f"dir:{where} is not a kernel tree (no Makefile at its top)")
