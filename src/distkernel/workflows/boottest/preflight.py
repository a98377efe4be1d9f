"""What a boot test can know before booting, refused at once as bad input (exit 2)
rather than waited out: a kernel the chosen firmware cannot start, a kernel that cannot
take the test initramfs, a module to load that the kernel does not have."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from distkernel.build.config.values import parse_config
from distkernel.build.package.format import KERNEL_DIR
from distkernel.build.package.reader import open_stream
from distkernel.core.errors import UserError


def norm(module: str) -> str:
    """A module's name as the kernel knows it (- and _ are the same)."""
    return module.replace("-", "_")


def package_config(package: Path) -> dict[str, str]:
    """The package's kernel config member (near the start of the stream)."""
    name = f"{KERNEL_DIR}/config"
    with open_stream(package) as tar:
        for info in tar:
            if info.name == name and (f := tar.extractfile(info)) is not None:
                return parse_config(f.read().decode("utf-8", "replace"))
    raise UserError(f"{package}: has no {name}; rebuild the package")


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
