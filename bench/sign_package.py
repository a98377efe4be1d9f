"""`distkernel sign` of the default package: the payload frame copied as it is (new
head and tail frames only), beside the same package in one zstd frame, which sign
must decompress and recompress whole at the writer's level 15: what every sign (and
so every matrix publish) cost before packages were cut into frames. Both give the
same bytes (checked)."""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
from pathlib import Path

import zstandard

from bench.common import DEFAULT_RECIPE, DISTKERNEL, ratio, report, sh, timed
from distkernel.build.package.writer import ZSTD_WORKERS, compression_params


def one_frame(src: Path, dst: Path) -> None:
    """SRC's tar in a single frame, as packages were written before."""
    with open(src, "rb") as f, open(dst, "wb") as out:
        tar = zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True)
        params = compression_params(ZSTD_WORKERS)
        with zstandard.ZstdCompressor(compression_params=params).stream_writer(out, closefd=False) as zw:
            shutil.copyfileobj(tar, zw)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        built = Path(json.loads(sh(*DISTKERNEL, "build", DEFAULT_RECIPE, "--out", tmp / "out", "--json"))["package"])
        sh(*DISTKERNEL, "key", "generate", "--out", tmp / "keys")
        key = tmp / "keys" / "package.key"
        framed, single = tmp / "framed.tar.zst", tmp / "single.tar.zst"
        one_frame(built, single)
        times = []
        for _ in range(args.repeat):
            shutil.copyfile(built, framed)
            times.append(timed(lambda: sh(*DISTKERNEL, "sign", framed, "--key", key)))
        single_size = single.stat().st_size
        whole = timed(lambda: sh(*DISTKERNEL, "sign", single, "--key", key))
        ours = statistics.median(times)
        report(
            "sign_package",
            {
                "package_bytes": built.stat().st_size,
                "one_frame_bytes": single_size,
                "sign_s": round(ours, 2),
                "sign_recompressing_s": round(whole, 2),
                "ratio": ratio(ours, whole),
                "same_bytes": framed.read_bytes() == single.read_bytes(),
            },
        )


if __name__ == "__main__":
    main()
