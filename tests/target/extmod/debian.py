"""Real *-dkms packages from Debian's archive and Debian's real dkms, for comparing
distkernel's builds with dkms's on the same headers. The .debs are fetched with
`apt-get download` at test time into the user cache dir (never committed) and kept."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from distkernel.core.cache import cache_dir

# The set, and what each one covers.
PACKAGES = {
    "v4l2loopback-dkms": "if/else on the kernel version around reading the kernel's .config; MAKE `make ... all`",
    "tp-smapi-dkms": "three modules in arrays: tp_smapi and hdaps use thinkpad_ec's symbols",
    "dm-writeboost-dkms": "MAKE `make all KERNEL_TREE=... V=1`, whose Makefile runs make M=$(PWD); KERNEL_MIN",
    "acpi-call-dkms": "BUILD_EXCLUSIVE_CONFIG that the kernel meets",
    "evdi-dkms": "BUILD_EXCLUSIVE_CONFIG that the kernel does not meet (no I2C, no DRM)",
    "ddcci-dkms": "greps the kernel's .config and excludes itself with a computed BUILD_EXCLUSIVE_ARCH",
    "gost-crypto-dkms": "ccflags -I $(PWD), six modules; the kernel lacks the crypto skcipher API: modpost fails",
}


def fetch(package: str) -> Path:
    """PACKAGE's .deb from the archive, downloaded once into the user cache."""
    folder = cache_dir("debian-dkms")
    found = sorted(folder.glob(f"{package}_*.deb"))
    if not found:
        subprocess.run(["apt-get", "download", "-q", package], cwd=folder, check=True, capture_output=True)
        found = sorted(folder.glob(f"{package}_*.deb"))
    return found[-1]


def unpack(package: str, top: Path) -> Path:
    """The module source the .deb installs (usr/src/NAME-VERSION), under TOP."""
    dest = top / package
    if not dest.exists():
        dest.mkdir(parents=True)
        subprocess.run(["dpkg-deb", "-x", fetch(package), dest], check=True)
    (source,) = [p for p in (dest / "usr/src").iterdir() if p.is_dir()]
    return source


@dataclass(frozen=True)
class DkmsResult:
    outcome: str  # built | excluded | failed
    modules: tuple[str, ...]  # .ko file names dkms kept
    log: str


def real_dkms_build(source: Path, release: str, headers: Path, top: Path) -> DkmsResult:
    """`dkms add` + `dkms build` of SOURCE with its own trees under TOP and
    --kernelsourcedir HEADERS: nothing of this machine's /var/lib/dkms, /usr/src or
    /lib/modules is used. (dkms signs only when a sign-file exists at its Debian paths,
    /usr/lib/linux-kbuild-* or /lib/modules/RELEASE/build; the caller checks they do not.)"""
    trees = {name: top / name for name in ("tree", "src", "install")}
    for path in trees.values():
        path.mkdir(parents=True, exist_ok=True)
    opts = [f"--dkmstree={trees['tree']}", f"--sourcetree={trees['src']}", f"--installtree={trees['install']}"]
    before = set(trees["tree"].iterdir())
    add = subprocess.run(["dkms", "add", *opts, str(source)], capture_output=True, text=True, check=False)
    assert add.returncode == 0, add.stdout + add.stderr
    (module,) = set(trees["tree"].iterdir()) - before
    (version,) = [p.name for p in module.iterdir()]
    argv = ["dkms", "build", "-m", module.name, "-v", version, "-k", release, "-a", "x86_64"]
    build = subprocess.run([*argv, f"--kernelsourcedir={headers}", *opts], capture_output=True, text=True, check=False)
    built = module / version / release / "x86_64" / "module"
    outcome = {0: "built", 77: "excluded"}.get(build.returncode, "failed")
    modules = tuple(sorted(p.name for p in built.iterdir())) if built.is_dir() else ()
    return DkmsResult(outcome, modules, build.stdout + build.stderr)


def dkms_would_sign(release: str) -> bool:
    return (
        any(Path("/usr/lib").glob("linux-kbuild-*/scripts/sign-file"))
        or Path(f"/lib/modules/{release}/build/scripts/sign-file").exists()
    )


def have_real_dkms() -> bool:
    return shutil.which("dkms") is not None and shutil.which("apt-get") is not None
