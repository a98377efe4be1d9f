"""dkms.conf evaluated as dkms evaluates it: sourced by bash (dkms's read_conf and
safe_source, in data/dkms/read.sh) in a clean environment, from the module's folder,
with dkms's variables set for the target kernel; the variables it leaves are read back
NUL-separated and checked here. A dkms.conf is untrusted shell: its size and run time
are bounded, and every name it gives that becomes a path is checked (plain names,
locations under the module tree, DEST_MODULE_LOCATION as dkms allows it)."""

from __future__ import annotations

import dataclasses
import os
import re
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from distkernel.core.errors import ToolError, UserError
from distkernel.core.tools import call

MAX_CONF_BYTES = 256 * 1024  # real ones are a few KiB
EVAL_SECONDS = 30
OUTPUT_KIB = 4096  # `ulimit -f` while it runs: what it may write, our answer included
CLEAN_PATH = "/usr/sbin:/usr/bin:/sbin:/bin:/usr/lib/dkms"  # dkms adds /usr/lib/dkms
DEST_ROOTS = ("/kernel", "/updates", "/extra")  # dkms refuses any other DEST_MODULE_LOCATION
_PLAIN = re.compile(r"^[A-Za-z0-9_.+~-]+$")
_YES, _NO = ("yes",), ("", "no")
_BASH_ERROR = re.compile(r"^.*?: line (\d+): (.*)$")

# Keys distkernel does not act on, with why (shown when the module is added).
NOT_RUN = {
    "PRE_INSTALL": "a script dkms runs before installing: not run",
    "POST_ADD": "a script dkms runs after `dkms add`: not run",
    "POST_REMOVE": "a script dkms runs after `dkms remove`: not run",
    "OBSOLETE_BY": "not supported (use BUILD_EXCLUSIVE_KERNEL_MAX)",
    "MODULES_CONF": "deprecated in dkms: not applied",
    "MODULES_CONF_ALIAS_TYPE": "deprecated in dkms: not applied",
    "MODULES_CONF_OBSOLETES": "deprecated in dkms: not applied",
    "MODULES_CONF_OBSOLETE_ONLY": "deprecated in dkms: not applied",
    "SIGN_FILE": "modules are signed with the root's module key",
    "MOK_SIGNING_KEY": "modules are signed with the root's module key",
    "MOK_CERTIFICATE": "modules are signed with the root's module key",
}


@dataclass(frozen=True)
class Context:
    """dkms's variables while it reads a dkms.conf for one kernel."""

    kernelver: str
    arch: str  # `uname -m` of the kernel's machine
    kernel_source_dir: Path  # the kernel's headers tree
    dkms_tree: Path  # builds happen in $dkms_tree/$module/$module_version/build
    source_tree: Path
    install_tree: Path  # lib/modules
    module: str
    module_version: str
    parallel_jobs: int = 1
    running_distribution: str = ""

    def variables(self) -> dict[str, str]:
        return {
            "kernelver": self.kernelver,
            "arch": self.arch,
            "kernel_source_dir": str(self.kernel_source_dir),
            "kernel_config": str(self.kernel_source_dir / ".config"),
            "dkms_tree": str(self.dkms_tree),
            "source_tree": str(self.source_tree),
            "install_tree": str(self.install_tree),
            "module": self.module,
            "module_version": self.module_version,
            "parallel_jobs": str(self.parallel_jobs),
            "current_kernel": os.uname().release,  # dkms: `uname -r`, the running kernel
            "current_os": "Linux",
            "running_distribution": self.running_distribution,
            "tmp_location": "/tmp",
        }

    @property
    def build_dir(self) -> Path:
        return self.dkms_tree / self.module / self.module_version / "build"


@dataclass(frozen=True)
class BuiltModule:
    name: str  # BUILT_MODULE_NAME[i], without .ko
    location: str  # BUILT_MODULE_LOCATION[i], relative to the build folder ("" = its top)
    dest: str  # DEST_MODULE_LOCATION[i] without its leading /, relative to lib/modules/KREL
    dest_name: str  # DEST_MODULE_NAME[i], else name
    strip: bool = True  # STRIP[i] (default: STRIP[0], else yes)


@dataclass(frozen=True)
class DkmsConf:
    package_name: str
    package_version: str
    modules: tuple[BuiltModule, ...]
    make_command: str  # the MAKE[#] chosen for the kernel (MAKE_MATCH), else dkms's default
    default_make: bool  # make_command is dkms's own `make -C $kernel_source_dir M=...build`
    clean: str
    patches: tuple[str, ...]  # PATCH[#] for the kernel (PATCH_MATCH), files in patches/
    pre_build: str
    post_build: str
    post_install: str
    exclusion: str  # the BUILD_EXCLUSIVE_* rule that rules the kernel out, else ""
    autoinstall: bool
    remake_initrd: bool
    build_depends: tuple[str, ...]
    ignored: tuple[str, ...]  # keys set that distkernel does not act on, with why
    messages: tuple[str, ...] = ()  # what sourcing it printed on stderr


@cache
def _script() -> str:
    return resources.files("distkernel.target.data").joinpath("dkms/read.sh").read_text()


def evaluate(
    conf: Path, ctx: Context, *, overrides: Path | None = None, cwd: Path | None = None, version: str | None = None
) -> DkmsConf:
    """Source CONF as dkms does for CTX's kernel (from CWD, default its folder; then the
    root's /etc/dkms override files for the module, OVERRIDES) and return what it sets;
    UserError when it cannot be read, runs too long, or sets something dkms (or
    distkernel) refuses. VERSION stands in for a missing PACKAGE_VERSION."""
    where = str(conf)
    try:
        size = conf.stat().st_size
    except OSError as e:
        raise UserError(f"{conf}: cannot read ({e.strerror})") from None
    if size > MAX_CONF_BYTES:
        raise UserError(f"{conf}: {size} bytes, over the {MAX_CONF_BYTES} a dkms.conf may have; is it a dkms.conf?")
    with tempfile.TemporaryDirectory(prefix="distkernel-dkms-") as tmp:
        answer = Path(tmp) / "answer"
        (Path(tmp) / "scratch").mkdir()
        conf = conf.absolute()  # bash runs from the module's folder: a relative name would miss
        folder = (cwd or conf.parent).absolute()
        argv = [
            *("timeout", "-k", "2", str(EVAL_SECONDS)),
            *("env", "-i", f"PATH={CLEAN_PATH}", f"PWD={folder}", "LC_ALL=C"),
            *("bash", "--noprofile", "--norc", "-c", f"ulimit -f {OUTPUT_KIB}\n{_script()}", "dkms"),
            *(str(conf), str(overrides or ""), str(Path(tmp) / "scratch")),
            *(f"{k}={v}" for k, v in ctx.variables().items()),
        ]
        with open(answer, "wb") as out:
            try:
                done = call(argv, ok=None, cwd=folder, stdout=out, timeout=EVAL_SECONDS + 10, what="bash dkms.conf")
            except ToolError as e:
                raise UserError(f"{conf}: {e.message}; fix the dkms.conf") from None
        messages = tuple(line for line in done.output.splitlines() if line.strip())
        if done.code == 124:
            raise UserError(f"{conf}: sourcing it did not finish within {EVAL_SECONDS} s; fix the dkms.conf")
        try:
            raw = parse_answer(answer.read_bytes())
        except ValueError as e:
            last = messages[-1] if messages else f"bash exit {done.code}"
            raise UserError(f"{conf}: could not be evaluated ({e}: {last}); fix the dkms.conf") from None
    conf_ = checked(raw, where, messages, version)
    generic = f"make -C {ctx.kernel_source_dir} M={ctx.build_dir}"  # dkms's MAKE when none is set
    return dataclasses.replace(conf_, default_make=conf_.make_command == generic)


def parse_answer(data: bytes) -> dict[str, dict[int, str]]:
    """NAME NUL INDEX NUL VALUE NUL records, ending with dk:end."""
    fields = data.split(b"\0")
    if fields[-1] != b"" or (len(fields) - 1) % 3:
        raise ValueError("truncated answer")
    out: dict[str, dict[int, str]] = {}
    for i in range(0, len(fields) - 1, 3):
        name, index, value = (f.decode(errors="replace") for f in fields[i : i + 3])
        out.setdefault(name, {})[int(index)] = value
    if "dk:end" not in out:
        raise ValueError("no end record")
    return out


def checked(
    raw: Mapping[str, Mapping[int, str]], where: str, messages: tuple[str, ...] = (), version: str | None = None
) -> DkmsConf:
    """The variables as dkms's read_conf turns them into a module's build, with its
    checks, plus distkernel's: names that become paths stay plain and inside their tree."""

    def get(key: str, i: int = 0) -> str:
        return raw.get(key, {}).get(i, "")

    # bash's own complaints about the file ("FILE: line N: ...") explain a refusal best
    shell = [f"{where}:{m.group(1)}: {m.group(2)}" for m in map(_BASH_ERROR.match, messages) if m]

    def refuse(what: str, fix: str = "fix the dkms.conf") -> UserError:
        if shell:
            return UserError(f"{shell[0]} ({what}); {fix}")
        return UserError(f"{where}: {what}; {fix}")

    name, version = get("PACKAGE_NAME"), get("PACKAGE_VERSION") or version or ""
    if not name:
        raise refuse("PACKAGE_NAME is not set")
    if not version:
        raise refuse("PACKAGE_VERSION is not set", "add it or pass --version")
    arrays = ("BUILT_MODULE_NAME", "BUILT_MODULE_LOCATION", "DEST_MODULE_NAME", "DEST_MODULE_LOCATION")
    count = max((i for a in arrays for i in raw.get(a, {})), default=-1) + 1  # arrays may be sparse
    strip0 = _yes_no_strip(get("STRIP", 0), True)
    modules = []
    for i in range(count):
        built = get("BUILT_MODULE_NAME", i) or (name if count == 1 else "")
        if not built:
            raise refuse(f"no BUILT_MODULE_NAME[{i}]")
        dest_name = get("DEST_MODULE_NAME", i) or built
        for key, value in (("BUILT_MODULE_NAME", built), ("DEST_MODULE_NAME", dest_name)):
            if value.endswith((".o", ".ko")):
                raise refuse(f"{key}[{i}] {value!r} ends in .o or .ko")
            if not _PLAIN.match(value) or value in (".", ".."):
                raise refuse(f"{key}[{i}] {value!r} is not a plain module name")
        location = get("BUILT_MODULE_LOCATION", i)
        if location.startswith("/") or not _inside(location):
            raise refuse(f"BUILT_MODULE_LOCATION[{i}] {location!r} leaves the build folder")
        dest = get("DEST_MODULE_LOCATION", i)
        if not dest:
            raise refuse(f"no DEST_MODULE_LOCATION[{i}]")
        if not dest.startswith(DEST_ROOTS) or not _inside(dest):
            raise refuse(f"DEST_MODULE_LOCATION[{i}] {dest!r} must be under /kernel, /updates or /extra")
        strip = _yes_no_strip(get("STRIP", i), strip0) if i else strip0
        modules.append(BuiltModule(built, location.strip("/"), dest.strip("/"), dest_name, strip))
    if not modules:
        raise refuse("no DEST_MODULE_LOCATION (a dkms.conf names at least one module)")
    patches = tuple(raw.get("dk:patch", {}).values())
    for p in patches:
        if p.startswith("/") or not _inside(p):
            raise refuse(f"PATCH {p!r} is not a file under patches/")
    scripts = {k: get(k) for k in ("PRE_BUILD", "POST_BUILD", "POST_INSTALL")}
    for key, command in scripts.items():
        first = command.split(" ", 1)[0]
        if command and (first.startswith("/") or not _inside(first)):
            raise refuse(f"{key} {first!r} is not a script inside the module's folder")
    depends = tuple(word for value in raw.get("BUILD_DEPENDS", {}).values() for word in value.split())
    if bad := [d for d in depends if not _PLAIN.match(d)]:
        raise refuse(f"BUILD_DEPENDS {bad[0]!r} is not a module name")
    return DkmsConf(
        package_name=name,
        package_version=version,
        modules=tuple(modules),
        make_command=get("dk:make_command"),
        default_make=False,
        clean=get("CLEAN"),
        patches=patches,
        pre_build=scripts["PRE_BUILD"],
        post_build=scripts["POST_BUILD"],
        post_install=scripts["POST_INSTALL"],
        exclusion=get("dk:exclude"),
        autoinstall=_yes_no(get("AUTOINSTALL"), "AUTOINSTALL", refuse),
        remake_initrd=_yes_no(get("REMAKE_INITRD"), "REMAKE_INITRD", refuse),
        build_depends=depends,
        ignored=tuple(f"{k} ({why})" for k, why in NOT_RUN.items() if any(raw.get(k, {}).values())),
        messages=messages,
    )


def _inside(path: str) -> bool:
    """A relative path that never goes up (no `..`) and has no control characters."""
    return ".." not in Path(path).parts and not any(ord(c) < 32 for c in path)


def _yes_no(value: str, key: str, refuse: Callable[[str], UserError]) -> bool:
    """dkms's yes/no: yes (any case) or empty/no; anything else is refused, as dkms does."""
    if value.lower() in _YES:
        return True
    if value.lower() in _NO:
        return False
    raise refuse(f"{key} {value!r} is not yes or no")


def _yes_no_strip(value: str, default: bool) -> bool:
    """STRIP[#]: n* no, y* yes, empty the default (dkms's case patterns)."""
    if value[:1] in ("n", "N"):
        return False
    if value[:1] in ("y", "Y"):
        return True
    return default


def running_distribution(root: Path) -> str:
    """dkms's distro_version(): ID_LIKE's first word from os-release, else ID (the
    root's, not this machine's)."""
    for rel in ("etc/os-release", "usr/lib/os-release"):
        try:
            text = (root / rel).read_text(errors="replace")
        except OSError:
            continue
        values = {}
        for line in text.splitlines():
            key, sep, value = line.partition("=")
            if sep:
                values[key.strip()] = value.strip().strip("\"'")
        if values.get("ID") == "ubuntu":
            return "ubuntu"
        return (values.get("ID_LIKE", "").split() or [values.get("ID", "")])[0]
    return ""
