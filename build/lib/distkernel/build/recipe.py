"""The TOML recipe: a typed model, validated against its own dataclass fields so that
adding a key is adding a field. Every error names the file, the key and the line."""

from __future__ import annotations

import os
import re
import stat
import tomllib
import types
import typing
from dataclasses import MISSING, dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

from distkernel.core.arch import known_arches
from distkernel.core.cache import sha256_bytes
from distkernel.core.errors import UserError

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
SYMBOL_RE = re.compile(r"^(CONFIG_)?[A-Za-z0-9_]{1,128}$")
SOURCE_KINDS = ("debian", "tarball", "url", "dir")
LOCALVERSION_RE = re.compile(r"^[A-Za-z0-9._+~-]{1,64}$")  # appended to the kernel release
# Recipe values reach a .config, command lines and file names: no control character
# (a newline in localversion would add a line to the .config), and bounded sizes so
# that a hostile recipe costs milliseconds, not a RecursionError or an hour.
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")
QUOTED_RE = re.compile(r'^"(?:[^"\\]|\\.)*"$')  # a Kconfig string, its quotes escaped
MAX_RECIPE = 256 << 10  # bytes
MAX_STRING = 4096  # characters of any one value (PATH_MAX)
MAX_ITEMS = 4096  # entries of any list or table (options, patches, fragments, ...)
# `dir:` folders that are never a kernel tree (walking them costs a traversal of the system).
SYSTEM_DIRS = frozenset(
    [
        *("/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib64", "/opt", "/proc", "/root", "/run"),
        *("/sbin", "/srv", "/sys", "/tmp", "/usr", "/usr/src", "/var"),
    ]
)
PSEUDO_FS = ("/proc", "/sys", "/dev", "/run")  # nothing below these is a source tree either

# Field metadata: "path" = resolved against the recipe's folder and must exist ("file"
# or "dir"); "inside" = a relative path must stay inside the recipe's folder (an
# absolute path is taken as meant); "suffix" = the file name must end so.
FILE = {"path": "file"}
DIR = {"path": "dir"}
PATCH = {"path": "file", "inside": "yes"}
FRAGMENT = {"path": "file", "inside": "yes", "suffix": ".config"}
# `distkernel:fragments/X.config` names a file of the recipes distkernel ships (build/data/
# recipes), so a recipe anywhere can build on the shipped fragments without copying them.
SHIPPED = "distkernel:"


def shipped_recipes() -> Path:
    return Path(str(resources.files("distkernel.build.data").joinpath("recipes")))


@dataclass(frozen=True)
class KernelSpec:
    name: str
    source: str
    sha256: str = ""
    patches: tuple[Path, ...] = field(default=(), metadata=PATCH)
    arch: str = "x86_64"
    localversion: str = ""
    variant: str = ""

    @property
    def source_kind(self) -> str:
        return self.source.split(":", 1)[0]

    @property
    def source_ref(self) -> str:
        return self.source.split(":", 1)[1]


@dataclass(frozen=True)
class ConfigSpec:
    base: str = ""  # required unless a savedconfig is given
    savedconfig: Path | None = field(default=None, metadata=DIR)
    fragments: tuple[Path, ...] = field(default=(), metadata=FRAGMENT)
    features: tuple[str, ...] = ()
    config_d: bool = False  # apply <root>/etc/kernel/config.d/*.config
    root: Path | None = field(default=None, metadata=DIR)  # the target root (config.d, base = "running"); `--root`
    tailor: Path | None = field(default=None, metadata=FILE)  # a `distkernel probe` host.json
    options: dict[str, str] = field(default_factory=dict)
    strict: bool = False
    # `--set CONFIG_X=y` for one run: the last config input; never read from a recipe file.
    overrides: dict[str, str] = field(default_factory=dict, metadata={"cli": "--set"})


@dataclass(frozen=True)
class BuildSpec:
    ccache: bool = True
    jobs: int = 0  # 0: one per core


@dataclass(frozen=True)
class TestSpec:
    modules: tuple[str, ...] = ()


@dataclass(frozen=True)
class SignSpec:
    """Signing keys (docs/signing.md); a key's fingerprint enters the package's cache
    key, the key itself never enters the package or a cache record."""

    package: Path | None = field(default=None, metadata=FILE)  # Ed25519 private key: signs manifest.json
    modules: Path | None = field(default=None, metadata=FILE)  # PEM key + cert: CONFIG_MODULE_SIG_KEY
    secureboot_key: Path | None = field(default=None, metadata=FILE)  # db key: sbsign kernel/vmlinuz
    secureboot_cert: Path | None = field(default=None, metadata=FILE)  # its certificate


@dataclass(frozen=True)
class Recipe:
    path: Path
    sha256: str
    kernel: KernelSpec
    config: ConfigSpec
    build: BuildSpec = field(default_factory=BuildSpec)
    test: TestSpec = field(default_factory=TestSpec)
    sign: SignSpec = field(default_factory=SignSpec)

    @property
    def folder(self) -> Path:
        return self.path.parent

    @property
    def base_file(self) -> Path | None:
        """The file of `base = "file:PATH"`, resolved against the recipe's folder."""
        base = self.config.base
        return resolve_ref(self, base.removeprefix("file:")) if base.startswith("file:") else None

    def line(self, table: str, key: str | None = None) -> int:
        return find_line(self.path.read_text(), table, key)

    def line_of(self, table: str, key: str | None = None) -> str:
        """`/path/recipe.toml:12` for a key, for error messages."""
        return f"{self.path}:{self.line(table, key)}"

    def owns(self, path: Path) -> bool:
        """PATH is in the recipe's own folder: its author wrote it, so errors may quote it."""
        return path.is_relative_to(self.folder.resolve())

    def display(self, path: Path) -> str:
        """A path as the recipe's reader thinks of it: relative to the recipe's folder
        (the recipe file itself by its name)."""
        try:
            return str(path.relative_to(self.folder))
        except ValueError:
            return str(path)


SECTIONS: dict[str, type] = {
    "kernel": KernelSpec,
    "config": ConfigSpec,
    "build": BuildSpec,
    "test": TestSpec,
    "sign": SignSpec,
}


def find_line(text: str, table: str, key: str | None = None) -> int:
    """The line of `[table]` `key = ...` (or of the table header) in a TOML text: tomllib
    keeps no positions, and recipes are small enough to scan."""
    current = ""
    header_line = 1
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if m := re.match(r"^\[\s*([A-Za-z0-9_.-]+)\s*\]", line):
            current = m.group(1)
            if current == table:
                header_line = number
            continue
        if key is None:
            continue
        dotted = f"{current}.{line}" if current else line
        if re.match(rf"^{re.escape(table)}\.{re.escape(key)}\s*[=.]", dotted):
            return number
    return header_line


def _normalize_value(value: Any) -> str | None:
    """A recipe option value as it is written in a .config."""
    if isinstance(value, bool):
        return "y" if value else "n"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        if value in ("y", "m", "n") or re.fullmatch(r"-?\d+|0x[0-9a-fA-F]+", value):
            return value
        if value.startswith('"') and value.endswith('"') and len(value) >= 2:
            return value
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return None


normalize_value = _normalize_value


def normalize_symbol(name: str) -> str:
    return name if name.startswith("CONFIG_") else f"CONFIG_{name}"


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
            normalized = _normalize_value(value)
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
    recipe = Recipe(path=path, sha256=sha256_bytes(data), **parts)
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
    if (recipe.sign.secureboot_key is None) != (recipe.sign.secureboot_cert is None):
        raise reader.fail("sign", None, "secureboot_key and secureboot_cert go together: set both or neither")


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


def resolve_ref(recipe: Recipe, ref: str) -> Path:
    """A path written in the recipe, resolved against the recipe's folder."""
    return (recipe.folder / ref).resolve()
