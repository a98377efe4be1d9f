"""A newc ("070701") cpio writer, the format the kernel unpacks into its rootfs.

Deterministic by construction: entries sorted by path (parents first), owner 0:0, one
fixed mtime, inode numbers in order, nlink 1, never a hardlink."""

from __future__ import annotations

import stat
from dataclasses import dataclass, field

TRAILER = "TRAILER!!!"


@dataclass(frozen=True)
class Entry:
    mode: int  # full st_mode, type bits included
    data: bytes = b""  # file content, or a symlink's target
    rdev: tuple[int, int] = (0, 0)


def _header(ino: int, mode: int, nlink: int, mtime: int, size: int, rdev: tuple[int, int], namesize: int) -> bytes:
    fields = (ino, mode, 0, 0, nlink, mtime, size, 0, 0, rdev[0], rdev[1], namesize, 0)
    return b"070701" + b"".join(b"%08X" % f for f in fields)


def _pad(n: int) -> bytes:
    return b"\0" * (-n % 4)


@dataclass
class Archive:
    """Paths are relative ("bin/busybox"); missing parent directories are added (0755)."""

    mtime: int = 0
    entries: dict[str, Entry] = field(default_factory=dict)

    def _parents(self, path: str) -> None:
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            parent = "/".join(parts[:i])
            if parent not in self.entries:
                self.entries[parent] = Entry(stat.S_IFDIR | 0o755)

    def _add(self, path: str, entry: Entry) -> None:
        path = path.strip("/")
        if not path or ".." in path.split("/"):
            raise ValueError(f"bad path in initramfs: {path!r}")
        self._parents(path)
        self.entries[path] = entry

    def dir(self, path: str, perm: int = 0o755) -> None:
        self._add(path, Entry(stat.S_IFDIR | perm))

    def file(self, path: str, data: bytes, perm: int = 0o644) -> None:
        self._add(path, Entry(stat.S_IFREG | perm, data))

    def symlink(self, path: str, target: str) -> None:
        self._add(path, Entry(stat.S_IFLNK | 0o777, target.encode()))

    def chardev(self, path: str, major: int, minor: int, perm: int = 0o600) -> None:
        self._add(path, Entry(stat.S_IFCHR | perm, rdev=(major, minor)))

    def __contains__(self, path: str) -> bool:
        return path.strip("/") in self.entries

    def to_bytes(self) -> bytes:
        out: list[bytes] = []
        for ino, path in enumerate(sorted(self.entries, key=lambda p: p.split("/")), 1):
            e = self.entries[path]
            name = path.encode() + b"\0"
            nlink = 2 if stat.S_ISDIR(e.mode) else 1
            head = _header(ino, e.mode, nlink, self.mtime, len(e.data), e.rdev, len(name))
            out += (head, name, _pad(len(head) + len(name)), e.data, _pad(len(e.data)))
        name = TRAILER.encode() + b"\0"
        head = _header(0, 0, 1, 0, 0, (0, 0), len(name))
        out += (head, name, _pad(len(head) + len(name)))
        return b"".join(out)


def members(data: bytes) -> list[tuple[str, int, bytes]]:
    """(path, mode, data) of each member of uncompressed newc archives (lsinitramfs-like)."""
    out = []
    at = 0
    while at + 110 <= len(data):
        if data[at : at + 6] not in (b"070701", b"070702"):
            at += 1  # zero padding between concatenated archives
            continue
        fields = [int(data[at + 6 + 8 * i : at + 14 + 8 * i], 16) for i in range(13)]
        mode, size, namesize = fields[1], fields[6], fields[11]
        name_at = at + 110
        name = data[name_at : name_at + namesize - 1].decode(errors="replace")
        body_at = name_at + namesize + (-(110 + namesize) % 4)
        if name != TRAILER:
            out.append((name, mode, data[body_at : body_at + size]))
        at = body_at + size + (-size % 4)
    return out
