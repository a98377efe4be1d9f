"""Paths under a root, in one place: the root's own paths (one table), the one function
that turns a name from outside data (a package's release, a state or journal entry) into
a path component, the one check every write under a root goes through, and the one rule
for text a boot loader reads.

A root is somebody's system: a name that reaches a path must be a plain name (no `/`,
`..`, control characters), and a write must land under the root, never through a
symlink that leads out of it (a merged-/usr `lib -> usr/lib` link inside the root is
fine; `lib -> /usr/lib` would write the host's files and is refused)."""

from __future__ import annotations

import os
from pathlib import Path

from distkernel.core.errors import UserError

# The root's own paths, relative to the root: every module takes them from here.
STATE_DIR = "var/lib/distkernel"
STATE = f"{STATE_DIR}/state.json"  # what install placed (the transaction's commit point)
JOURNAL = f"{STATE_DIR}/journal.json"  # an unfinished transaction
JOURNAL_RESERVE = f"{STATE_DIR}/journal.reserve"  # space kept so a full disk can still record a removal
LOCK = f"{STATE_DIR}/lock"
MODULE_REGISTRY = f"{STATE_DIR}/modules"  # external modules (distkernel modules add)
SERIALS = f"{STATE_DIR}/repo-serials.json"  # the binhost index serials this root has seen
LOG_DIR = "var/log/distkernel"
INSTALL_LOG = f"{LOG_DIR}/install.log"
PLUGINS_LOG = f"{LOG_DIR}/plugins.log"
GRUB_LOG = f"{LOG_DIR}/grub-mkconfig.log"
SECUREBOOT_LOG = f"{LOG_DIR}/secureboot.log"
CACHE_DIR = "var/cache/distkernel"
DOWNLOADS = f"{CACHE_DIR}/packages"  # packages fetched from a binhost, like apt's archives
EXTMOD_WORK = f"{CACHE_DIR}/extmod"  # external module build copies, removed after each build
CONF_DIR = "etc/distkernel"
TRUSTED_DIR = f"{CONF_DIR}/trusted.d"  # package signing keys the root trusts
MODULE_KEYS_DIR = f"{CONF_DIR}/keys"  # module signing key for external modules
SECUREBOOT_DIR = f"{CONF_DIR}/secureboot"  # db.key + db.crt: UKIs signed at install time
SETTINGS = f"{CONF_DIR}/distkernel.toml"  # defaults for the command line (the host's, under /)

MAX_NAME = 200  # below NAME_MAX (255) with room for the prefixes and suffixes layouts add


def _bad_char(text: str) -> str | None:
    return next((c for c in text if ord(c) < 0x20 or ord(c) == 0x7F), None)


def plain_name(value: object, what: str) -> str:
    """VALUE (from WHAT: a package field, a state entry) as one path component; anything
    else is a one-line UserError naming WHAT."""
    if not isinstance(value, str) or not value:
        problem = "is empty" if value == "" else f"is not a string ({type(value).__name__})"
    elif value in (".", ".."):
        problem = f"is {value!r}"
    elif _bad_char(value) is not None:
        problem = f"holds a control character ({value[:80]!r})"
    elif "/" in value or "\\" in value:
        problem = f"holds a path separator ({value[:80]!r})"
    elif len(value) > MAX_NAME:
        problem = f"is {len(value)} characters long (at most {MAX_NAME})"
    else:
        return value
    raise UserError(f"{what}: {problem}; it names files in the root, so it must be a plain name")


def one_line(value: str, what: str) -> str:
    """VALUE bound for a file a boot loader reads (an entry, loader.conf, grub.cfg, a UKI
    section): no newline or other control character can reach it (a tab is fine)."""
    bad = _bad_char(value.replace("\t", " "))
    if bad is not None:
        raise UserError(
            f"{what}: holds a newline or control character ({value[:80]!r}), which would add lines to a file "
            "the boot loader reads; fix it to one line of printable text"
        )
    return value


def relative(rel: str, what: str) -> list[str]:
    """The components of REL, a path relative to a root; one plain name each."""
    if not isinstance(rel, str) or rel.startswith("/"):
        raise UserError(f"{what}: {rel!r} is not a path relative to the root")
    return [plain_name(part, f"{what} ({rel[:120]!r})") for part in rel.split("/")]


def under_root(root: Path, rel: str, what: str = "") -> Path:
    """The one check before a write (create, replace, delete) at REL under ROOT: REL is
    made of plain names, and the folder holding it, with every symlink on the way
    resolved, is ROOT or below it. The final component is not followed (a rename or an
    unlink acts on a link itself). Returns the path to act on, its folder resolved."""
    parts = relative(rel, what or f"{root}/{rel}")
    real_root = os.path.realpath(root)
    parent = os.path.realpath(os.path.join(real_root, *parts[:-1]))
    if not _inside(parent, real_root):
        raise UserError(
            f"{root}/{rel}: refused, a symlink on the way leads out of the root (to {parent}); "
            "make it a link inside the root, or remove it"
        )
    return Path(parent, parts[-1])


def _inside(path: str, top: str) -> bool:
    return path == top or path.startswith(top.rstrip("/") + "/")
