"""The TOML recipe's typed model: one dataclass per table, whose fields are the keys the
strict reader (build/recipe.py) accepts, so that adding a key is adding a field; the
limits and grammars of recipe values; and where a recipe's lines and paths are."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
SYMBOL_RE = re.compile(r"^(CONFIG_)?[A-Za-z0-9_]{1,128}$")
SOURCE_KINDS = ("debian", "tarball", "url", "dir")
PIN_RE = re.compile(r"^[0-9][A-Za-z0-9.+~:-]{0,99}$")  # 6.1.192, 6.12.117-1~deb12u1
LOCALVERSION_RE = re.compile(r"^[A-Za-z0-9._+~-]{1,64}$")  # appended to the kernel release
# Where objects compile ([build] distribute), and a distcc host word: HOST[:PORT][/LIMIT]
# with distcc's `,lzo` and `,cpp` (pump mode) options, or `localhost[/LIMIT]`.
DISTRIBUTE = ("local", "distcc", "icecream")
DISTCC_HOST_RE = re.compile(
    r"^(?:localhost(?:/[1-9][0-9]{0,3})?"
    r"|[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?(?::[1-9][0-9]{0,4})?(?:/[1-9][0-9]{0,3})?(?:,(?:lzo|cpp))*)$"
)
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
    # A pinned source version (`distkernel bump` moves it): a Debian package version for
    # debian: sources, the kernel version for url: ones.
    version: str = ""
    # url: sources only: the kernel.org-style releases.json `bump` reads, and the OpenPGP
    # keyring whose keys must have signed the folder's sha256sums.asc and the tarball.
    feed: str = ""
    keyring: Path | None = field(default=None, metadata=FILE)

    @property
    def series(self) -> str:
        """The series a pinned source follows: 6.12 for linux-source-6.12 or 6.12.117."""
        if self.source_kind == "debian":
            return self.source_ref.removeprefix("linux-source-")
        return ".".join(re.findall(r"\d+", self.version.split("-")[0])[:2])

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
    jobs: int = 0  # 0: one per core (a distcc build: one per distcc slot)
    # Where objects compile: "local", "distcc" (hosts here, else $DISTCC_HOSTS, `build
    # --distcc HOSTS` over both) or "icecream" (the local iceccd's scheduler picks). Not
    # part of the recipe's identity: the package is the same wherever it compiles.
    distribute: str = "local"
    hosts: tuple[str, ...] = ()


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


def distcc_host_problem(word: str) -> str | None:
    """Why WORD is not a distcc host this reader accepts (None: it is)."""
    m = DISTCC_HOST_RE.match(word)
    port = re.search(r":(\d+)", word)
    if m and not (port and int(port.group(1)) > 65535):
        return None
    return f"{word!r} is not a distcc host (HOST[:PORT][/LIMIT][,lzo][,cpp], or localhost[/LIMIT])"


# The [build] keys that say where objects compile, never what they compile to: left out
# of the recipe's sha256 (so of the package key and metadata).
WHERE_KEYS = ("distribute", "hosts")


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


def normalize_value(value: Any) -> str | None:
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


def normalize_symbol(name: str) -> str:
    return name if name.startswith("CONFIG_") else f"CONFIG_{name}"


def resolve_ref(recipe: Recipe, ref: str) -> Path:
    """A path written in the recipe, resolved against the recipe's folder."""
    return (recipe.folder / ref).resolve()
