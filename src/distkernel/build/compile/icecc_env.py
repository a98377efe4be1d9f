"""The toolchain environment icecream ships to its hosts (ICECC_VERSION): a tarball
made once by icecc-create-env and kept under the user cache dir, keyed by the compiler
(the bytes of gcc, cc1 and as, and gcc's version), so a new compiler makes a new one."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from distkernel.core import cache
from distkernel.core.errors import ToolError
from distkernel.core.tools import call, require


def _program(compiler: str, name: str) -> Path | None:
    """The file of one of COMPILER's programs (cc1, as), as gcc itself finds it."""
    found = call([compiler, f"-print-prog-name={name}"], what=compiler).output.strip()
    path = found if os.sep in found else shutil.which(found)
    return Path(path).resolve() if path and os.path.isfile(path) else None


def compiler_key(compiler: str) -> str:
    """What decides the environment: the compiler's programs' bytes and its version."""
    gcc = Path(require(compiler)).resolve()
    h = hashlib.sha256(call([compiler, "-v"], what=compiler).output.encode())
    for path in (gcc, _program(compiler, "cc1"), _program(compiler, "as")):
        if path is not None:
            h.update(f"\0{path}\0{cache.sha256_file_memo(path)}".encode())
    return h.hexdigest()


def icecc_environment(compiler: str = "gcc") -> Path:
    """The cached environment tarball for COMPILER, made now when missing."""
    key = compiler_key(compiler)
    folder = cache.cache_dir("icecc-env")
    target = folder / f"{compiler}-{key[:16]}.tar.gz"
    if target.is_file():
        return target
    with cache.locked(f"icecc-env-{key[:16]}"):
        if target.is_file():
            return target
        tmp = folder / f".making-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        try:
            call(
                ["icecc-create-env", str(Path(require(compiler)).resolve())],
                cwd=tmp,
                timeout=900,
                what="icecc-create-env",
            )
            made = sorted(tmp.glob("*.tar*"))
            if len(made) != 1:
                raise ToolError(f"icecc-create-env left {len(made)} tarballs in {tmp}; expected one")
            os.replace(made[0], target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target
