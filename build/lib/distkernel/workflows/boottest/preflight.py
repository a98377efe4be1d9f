"""What a boot test can know before booting, refused at once as bad input (exit 2)
rather than waited out: a kernel the chosen firmware cannot start, a kernel that cannot
take the test initramfs, a module to load that the kernel does not have."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from distkernel.build.config.values import parse_config
from distkernel.build.package.format import KERNEL_DIR, Metadata
from distkernel.build.package.reader import check_package
from distkernel.core.errors import UserError


def norm(module: str) -> str:
    """A module's name as the kernel knows it (- and _ are the same)."""
    return module.replace("-", "_")


class _ConfigSink:
    """Keeps the kernel config member as the package reader streams it."""

    def __init__(self) -> None:
        self.data = bytearray()

    def file(self, name: str, mode: int) -> _ConfigSink | _Discard:
        return self if name == f"{KERNEL_DIR}/config" else _Discard()

    def write(self, data: memoryview) -> None:
        self.data += data

    def close(self) -> None:
        pass

    def symlink(self, name: str, target: str) -> None:
        pass

    def directory(self, name: str) -> None:
        pass


class _Discard:
    def write(self, data: memoryview) -> None:
        pass

    def close(self) -> None:
        pass


def judge_package(package: Path) -> tuple[Metadata, dict[str, str]]:
    """The package judged whole by the one reader, and its kernel config, in one pass."""
    sink = _ConfigSink()
    meta = check_package(package, sink).metadata
    return meta, parse_config(sink.data.decode("utf-8", "replace"))


def check_kernel(what: str, config: dict[str, str], firmware: str) -> None:
    """WHAT (the package or the installed kernel) can boot with FIRMWARE and the test init."""
    if firmware == "uefi" and config.get("CONFIG_EFI_STUB") != "y":
        raise UserError(
            f"{what}: the kernel has no CONFIG_EFI_STUB, so UEFI firmware and its boot loaders cannot "
            "start it; rebuild with CONFIG_EFI=y and CONFIG_EFI_STUB=y, or test it with --firmware bios"
        )
    if config.get("CONFIG_BLK_DEV_INITRD") != "y":
        raise UserError(
            f"{what}: the kernel has no CONFIG_BLK_DEV_INITRD, and `distkernel test` boots it with a test "
            "initramfs; rebuild with CONFIG_BLK_DEV_INITRD=y"
        )


def check_modules(what: str, wanted: Iterable[str], have: Iterable[str], *, option: str) -> None:
    """Every module of WANTED is one of HAVE (module names, without .ko)."""
    known = {norm(m) for m in have}
    missing = [m for m in wanted if norm(m) not in known]
    if missing:
        listed = ", ".join(sorted(known)[:12]) + (", ..." if len(known) > 12 else "") if known else "none"
        raise UserError(f"{option} {missing[0]}: {what} has no module {missing[0]} (it has: {listed}); {_fix(option)}")


def _fix(option: str) -> str:
    if option == "--module":
        return "pass one of its modules"
    return "fix the recipe's [test] modules and rebuild, or pass --module"


def installed_modules(modules_dir: Path) -> list[str]:
    """The loadable modules of an installed kernel, external ones included (modules.dep)."""
    try:
        lines = (modules_dir / "modules.dep").read_text().splitlines()
    except OSError:
        return []
    names = (line.split(":", 1)[0] for line in lines if ":" in line)
    return [Path(n).name.split(".ko", 1)[0] for n in names]
