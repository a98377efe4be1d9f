"""`distkernel bump` with nothing new, for ten recipes: eight following a kernel.org-style
feed (a mirror made here, signed with a key made here, on 127.0.0.1; two series) and two
pinned Debian sources at the archive's newest version (apt-cache). Goal: <= 2 s, the
whole CLI run."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench.common import DISTKERNEL, report, sh
from distkernel.build.feeds import debian
from tests.feedmirror import Mirror, make_key, serving, url_recipe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        keyring = make_key(tmp / "keys" / "home", "signer")
        mirror = Mirror(tmp / "mirror", tmp / "keys" / "home")
        recipes = tmp / "recipes"
        recipes.mkdir()
        with serving(mirror):
            shas = {v: mirror.add(v, tmp / "work") for v in ("6.1.7", "6.6.3")}
            for i in range(8):
                v = "6.1.7" if i % 2 else "6.6.3"
                url_recipe(recipes / f"feed{i}.toml", mirror, v, shas[v], keyring)
            for name in ("linux-source-6.1", "linux-source-6.12"):
                newest = debian.versions(name)[0]
                kernel = f'[kernel]\nname = "d"\nsource = "debian:{name}"\nversion = "{newest}"\n'
                (recipes / f"{name}.toml").write_text(kernel + '[config]\nbase = "tinyconfig"\n')
            times = []
            for _ in range(args.repeat):
                start = time.monotonic()
                out = sh(*DISTKERNEL, "bump", recipes)
                times.append(time.monotonic() - start)
                assert "nothing new" in out, out
    best = min(times)
    report("bump_nothing_new", {"recipes": 10, "seconds": times, "best": best, "goal": 2.0, "met": best <= 2.0})


if __name__ == "__main__":
    main()
