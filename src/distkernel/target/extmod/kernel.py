"""The kernel a module is built for, as its headers tree describes it: release,
configuration, architecture and the compiler settings make needs (never the running
kernel's)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from distkernel.build.config.values import read_config
from distkernel.core.arch import Arch, get_arch, known_arches


@dataclass(frozen=True)
class Kernel:
    release: str
    headers: Path  # the headers tree (lib/modules/RELEASE/build once installed)
    modules_dir: Path  # where modules go: ROOT/lib/modules/RELEASE (or its staged copy)
    config: dict[str, str] = field(default_factory=dict)
    arch: Arch | None = None  # None: the headers name no architecture we know; make picks the host's

    @classmethod
    def from_headers(cls, release: str, headers: Path, modules_dir: Path) -> Kernel:
        config_file = headers / ".config"
        config = read_config(config_file) if config_file.is_file() else {}
        return cls(release, headers, modules_dir, config, _arch_of(headers))

    @property
    def machine(self) -> str:
        """dkms's $arch: `uname -m` of the kernel's machine."""
        return self.arch.machines[0] if self.arch else ""

    @property
    def clang(self) -> bool:
        return self.config.get("CONFIG_CC_IS_CLANG") == "y"

    def make_vars(self) -> list[str]:
        """ARCH, CROSS_COMPILE and LLVM as the kernel was built with them."""
        # The Kbuild driver (and the source stage under it) loads only when a module is
        # built, not with every install that reads the registry.
        from distkernel.build.compile.kbuild import make_vars

        return make_vars(self.arch, self.clang)

    def cross_env(self) -> dict[str, str]:
        """ARCH and CROSS_COMPILE for a kernel of another machine, in the environment of
        a dkms MAKE line (dkms itself builds for the running machine only); none when native."""
        if self.arch is None or self.arch.native:
            return {}
        return dict(v.split("=", 1) for v in self.arch.make_args())

    def tool(self, name: str) -> str:
        """A binutils tool for the kernel's machine (llvm-NAME for clang-built kernels)."""
        if self.clang:
            return f"llvm-{name}"
        return f"{self.arch.cross_compile if self.arch else ''}{name}"


def _arch_of(headers: Path) -> Arch | None:
    """A package's headers carry only their own arch/ folder (a full source tree has
    them all: then make picks the host's)."""
    present = {p.name for p in (headers / "arch").iterdir()} if (headers / "arch").is_dir() else set()
    candidates = [get_arch(name) for name in known_arches() if get_arch(name).srcarch in present]
    if len(candidates) > 1 and (headers / ".config").is_file():  # arch/x86: x86_64 or i386
        config = read_config(headers / ".config")
        candidates = [a for a in candidates if config.get(a.kconfig) == "y"]
    return candidates[0] if len(candidates) == 1 else None
