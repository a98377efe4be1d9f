"""dkms.conf read as data: shell-style assignments are parsed, never run. Keys we
understand are kept raw and expanded per kernel; everything else (scripts, shell
logic, command substitution) is listed in `ignored` so the user sees what we skipped."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from distkernel.core.errors import UserError

SCALARS = (
    "PACKAGE_NAME",
    "PACKAGE_VERSION",
    "BUILD_EXCLUSIVE_KERNEL",
    "BUILD_EXCLUSIVE_ARCH",
    "BUILD_EXCLUSIVE_CONFIG",
    "AUTOINSTALL",
)
ARRAYS = (
    "BUILT_MODULE_NAME",
    "BUILT_MODULE_LOCATION",
    "DEST_MODULE_LOCATION",
    "DEST_MODULE_NAME",
    "MAKE",
    "MAKE_MATCH",
)

# Keys we know and deliberately leave aside, with the reason shown to the user.
SET_ASIDE = {
    "CLEAN": "every build starts from a fresh copy",
    "STRIP": "modules are always stripped of debug info",
    "REMAKE_INITRD": "install remakes the initramfs",
    **{k: "a script: not run" for k in ("PRE_BUILD", "POST_BUILD", "PRE_INSTALL", "POST_INSTALL", "POST_ADD")},
    "POST_REMOVE": "a script: not run",
}

_ASSIGN = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?:\[(\d+)\])?=(.*)$")
# $name or ${name}; "$$" is how a literal dollar (from single quotes) is kept.
_VAR = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*)|\$)")


@dataclass(frozen=True)
class BuiltModule:
    name: str  # BUILT_MODULE_NAME[i], without .ko
    location: str  # BUILT_MODULE_LOCATION[i], relative to the build copy ("" = its top)
    dest: str  # DEST_MODULE_LOCATION[i], relative to lib/modules/RELEASE ("" = updates/)
    dest_name: str  # DEST_MODULE_NAME[i], else name


@dataclass(frozen=True)
class DkmsConf:
    package_name: str  # "" when unset
    package_version: str
    modules: tuple[BuiltModule, ...]
    make: tuple[tuple[str, str], ...]  # (MAKE_MATCH regex or "", MAKE command), index order
    exclusive_kernel: str
    exclusive_arch: str
    exclusive_config: tuple[str, ...]  # CONFIG_X (must be y/m) or !CONFIG_X (must not be)
    autoinstall: bool
    ignored: tuple[str, ...]  # what was not understood, one entry each


def _lex_value(text: str) -> tuple[list[tuple[str, bool]], str]:
    """Split a shell word into (text, expandable) pieces; return the rest of the line."""
    pieces: list[tuple[str, bool]] = []
    i = 0
    while i < len(text) and not text[i].isspace():
        c = text[i]
        if c == "'":
            end = text.find("'", i + 1)
            if end < 0:
                raise ValueError("unterminated '")
            pieces.append((text[i + 1 : end], False))
            i = end + 1
        elif c == '"':
            j, buf = i + 1, []
            while j < len(text) and text[j] != '"':
                if text[j] == "\\" and j + 1 < len(text) and text[j + 1] in '"\\$`':
                    j += 1
                buf.append(text[j])
                j += 1
            if j >= len(text):
                raise ValueError('unterminated "')
            pieces.append(("".join(buf), True))
            i = j + 1
        else:
            j = i
            while j < len(text) and not text[j].isspace() and text[j] not in "'\"":
                j += 1
            pieces.append((text[i:j], True))
            i = j
    return pieces, text[i:].strip()


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Lines joined at trailing backslashes, with the number of their first line."""
    out: list[tuple[int, str]] = []
    buf, start = "", 0
    for n, line in enumerate(text.splitlines(), 1):
        if not buf:
            start = n
        if line.endswith("\\"):
            buf += line[:-1]
            continue
        out.append((start, buf + line))
        buf = ""
    if buf:
        out.append((start, buf))
    return out


def parse_text(text: str, where: str = "dkms.conf") -> DkmsConf:
    values: dict[str, str] = {}  # KEY or KEY[i] -> raw text (variables unexpanded)
    local: dict[str, str] = {}  # the file's own helper variables, expanded in place
    ignored: list[str] = []
    for n, line in _logical_lines(text):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = _ASSIGN.match(line)
        if not m:
            ignored.append(f"line {n}: shell code is not run")
            continue
        key, index, rest = m.group(1), m.group(2), m.group(3)
        label = f"{key}[{index}]" if index is not None else key
        try:
            pieces, tail = _lex_value(rest)
        except ValueError as e:
            raise UserError(f"{where}:{n}: {label}: {e}; fix the quoting") from None
        if tail and not tail.startswith("#"):
            ignored.append(f"line {n}: shell code is not run")
            continue
        if any(exp and ("$(" in t or "`" in t) for t, exp in pieces):
            ignored.append(f"{label} (command substitution is not run)")
            continue
        # Keep $variables for build time; a literal $ (single quotes) is kept as $$.
        raw = "".join(t if exp else t.replace("$", "$$") for t, exp in pieces)
        if (key in SCALARS and index is None) or key in ARRAYS:
            values[f"{key}[{index or 0}]" if key in ARRAYS else key] = raw
        elif key.islower() or key.startswith("_"):
            local[key] = raw
        else:
            ignored.append(f"{label} ({SET_ASIDE[key]})" if key in SET_ASIDE else label)
    for k, v in list(values.items()):
        values[k] = _VAR.sub(lambda m: local.get(m.group(1) or m.group(2) or "", m.group(0)), v)
    return _conf(values, tuple(dict.fromkeys(ignored)), where)


def _conf(values: Mapping[str, str], ignored: tuple[str, ...], where: str) -> DkmsConf:
    def own(text: str) -> str:  # PACKAGE_NAME/VERSION may be used by other keys
        return expand(text, {"PACKAGE_NAME": name, "PACKAGE_VERSION": version}, keep_unknown=True)

    name = expand(values.get("PACKAGE_NAME", ""), {})
    version = expand(values.get("PACKAGE_VERSION", ""), {})
    indexes = sorted({int(k.split("[")[1][:-1]) for k in values if k.startswith("BUILT_MODULE_NAME[")})
    modules = tuple(
        BuiltModule(
            name=own(values[f"BUILT_MODULE_NAME[{i}]"]).removesuffix(".ko"),
            location=own(values.get(f"BUILT_MODULE_LOCATION[{i}]", "")).strip("/"),
            dest=own(values.get(f"DEST_MODULE_LOCATION[{i}]", "")).strip("/"),
            dest_name=own(values.get(f"DEST_MODULE_NAME[{i}]", values[f"BUILT_MODULE_NAME[{i}]"])).removesuffix(".ko"),
        )
        for i in indexes
    )
    for m in modules:
        for part in (m.location, m.dest):
            if ".." in Path(part).parts:
                raise UserError(f"{where}: {part!r} leaves the module tree; use a path without '..'")
    make_indexes = sorted({int(k.split("[")[1][:-1]) for k in values if k.startswith("MAKE[")})
    make = tuple((values.get(f"MAKE_MATCH[{i}]", ""), values[f"MAKE[{i}]"]) for i in make_indexes)
    return DkmsConf(
        package_name=name,
        package_version=version,
        modules=modules,
        make=make,
        exclusive_kernel=values.get("BUILD_EXCLUSIVE_KERNEL", ""),
        exclusive_arch=values.get("BUILD_EXCLUSIVE_ARCH", ""),
        exclusive_config=tuple(values.get("BUILD_EXCLUSIVE_CONFIG", "").split()),
        autoinstall=values.get("AUTOINSTALL", "").strip().lower() == "yes",
        ignored=ignored,
    )


def parse(path: Path) -> DkmsConf:
    try:
        text = path.read_text(errors="replace")
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror})") from None
    return parse_text(text, str(path))


def expand(text: str, variables: Mapping[str, str], *, keep_unknown: bool = False) -> str:
    """Replace $name and ${name}; unknown names become empty, as in the shell (or stay,
    with KEEP_UNKNOWN, for a later expansion); $$ becomes $ (stays $$ with KEEP_UNKNOWN)."""

    def sub(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        if not name:
            return "$$" if keep_unknown else "$"
        return variables.get(name, m.group(0) if keep_unknown else "")

    return _VAR.sub(sub, text)


def unknown_variables(text: str, variables: Mapping[str, str]) -> list[str]:
    names = (m.group(1) or m.group(2) for m in _VAR.finditer(text))
    return [n for n in names if n and n not in variables]


def make_command(conf: DkmsConf, kernelver: str) -> str | None:
    """The MAKE[i] whose MAKE_MATCH[i] matches the kernel (MAKE[0] by default)."""
    chosen = None
    for match, command in conf.make:
        if not match:
            chosen = chosen or command
        elif re.match(match, kernelver):
            chosen = command
    return chosen


def exclusion(conf: DkmsConf, kernelver: str, arch: str, config: Mapping[str, str]) -> str:
    """Why BUILD_EXCLUSIVE_* rules this kernel out, or ""."""
    if conf.exclusive_kernel and not re.match(conf.exclusive_kernel, kernelver):
        return f"BUILD_EXCLUSIVE_KERNEL {conf.exclusive_kernel!r} does not match {kernelver}"
    if conf.exclusive_arch and not re.match(conf.exclusive_arch, arch):
        return f"BUILD_EXCLUSIVE_ARCH {conf.exclusive_arch!r} does not match {arch}"
    for option in conf.exclusive_config:
        negated = option.startswith("!")
        enabled = config.get(option.lstrip("!"), "n") in ("y", "m")
        if enabled == negated:
            return f"BUILD_EXCLUSIVE_CONFIG needs {option}"
    return ""
