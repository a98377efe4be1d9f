"""A binary-only client install from a binhost served by Debian's nginx on 127.0.0.1:
`distkernel install qemu-minimal --from URL --root FRESH --layout plain --initramfs none`
(index and kernel part download, every check, install), bytes on the wire and seconds.
The binhost publishes the package as two parts; a client with no external modules
downloads the kernel part alone, reported beside the whole package it was split from.

Baseline, in the same run and from the same nginx: download Debian's
`linux-image-6.1.0-N-cloud-amd64` .deb (the smallest Debian kernel image package, a
kernel of about the same role) and `dpkg -i` it into a sandbox root, a bookworm
minbase with kmod and linux-base (the image's dependencies but an initramfs tool)
made once with mmdebstrap and cached (`chroot ROOT dpkg -i --force-depends`:
its maintainer scripts run inside the sandbox, depmod included; the root has no
initramfs tool, so neither side builds an initramfs). Needs root (chroot) and nginx."""

from __future__ import annotations

import argparse
import json
import re
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.common import DEFAULT_RECIPE, DISTKERNEL, ratio, report, sh, timed
from distkernel.core import cache

NGINX = "/usr/sbin/nginx"
CONF = """daemon off; user root; pid {run}/pid; error_log {run}/error.log;
events {{}}
http {{ log_format b '$uri $status $body_bytes_sent'; access_log {run}/access.log b;
  client_body_temp_path {run}/body; proxy_temp_path {run}/proxy; fastcgi_temp_path {run}/fcgi;
  server {{ listen 127.0.0.1:{port}; root {www}; location ~ /\\. {{ return 404; }} }} }}
"""


def debian_image(dest: Path) -> Path:
    names = sh("apt-cache", "search", "--names-only", r"^linux-image-[0-9.]+-[0-9]+-cloud-amd64$").split()
    images = {n for n in names if n.startswith("linux-image-")}
    found = sorted(images, key=lambda n: [int(x) for x in re.findall(r"\d+", n)])
    debs = list(dest.glob(f"{found[-1]}_*.deb"))
    if not debs:
        sh("apt-get", "download", found[-1], cwd=dest)
        debs = list(dest.glob(f"{found[-1]}_*.deb"))
    return debs[0]


def minbase(dest: Path) -> Path:
    tar = dest / "bookworm-minbase-kmod.tar"
    if not tar.is_file():  # the image's dependencies but an initramfs tool (neither side makes one)
        include = "--include=kmod,linux-base"
        sh("mmdebstrap", "--variant=minbase", include, "--format=tar", "bookworm", str(tar) + ".part")
        Path(str(tar) + ".part").rename(tar)
    return tar


def start_nginx(www: Path, run: Path) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    run.mkdir()
    (run / "nginx.conf").write_text(CONF.format(run=run, port=port, www=www))
    proc = subprocess.Popen([NGINX, "-p", str(run), "-c", str(run / "nginx.conf"), "-e", str(run / "error.log")])
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, f"http://127.0.0.1:{port}/"
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"bench: nginx did not start: {(run / 'error.log').read_text()}")


def main() -> dict[str, object]:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    store = cache.cache_dir("bench", "binhost")
    deb, base = debian_image(store), minbase(store)
    with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp_name:
        tmp = Path(tmp_name)
        built = json.loads(sh(*DISTKERNEL, "build", DEFAULT_RECIPE, "--out", tmp / "out", "--json"))
        sh(*DISTKERNEL, "key", "generate", "--out", tmp / "keys")
        pkg = Path(built["package"])
        sh(*DISTKERNEL, "sign", pkg, "--key", tmp / "keys/package.key")
        www = tmp / "www"
        sh(*DISTKERNEL, "repo", "init", www / "bh", "--key", tmp / "keys/package.key")
        sh(*DISTKERNEL, "repo", "add", www / "bh", pkg)
        (www / "debian").mkdir()
        shutil.copyfile(deb, www / "debian" / deb.name)
        server, url = start_nginx(www, tmp / "nginx")
        n = [0]

        def fresh(kind: str) -> Path:
            n[0] += 1
            root = tmp / f"{kind}{n[0]}"
            if kind == "deb":
                root.mkdir()
                sh("tar", "-xf", base, "-C", root)
            else:
                (root / "etc/distkernel/trusted.d").mkdir(parents=True)
                shutil.copyfile(tmp / "keys/package.pub", root / "etc/distkernel/trusted.d/package.pub")
            return root

        def ours(root: Path) -> None:
            options = ["--layout", "plain", "--initramfs", "none"]
            sh(*DISTKERNEL, "install", "qemu-minimal", "--from", url + "bh/", "--root", root, *options)

        def debian(root: Path) -> None:
            with urllib.request.urlopen(url + "debian/" + deb.name) as r, open(root / "tmp" / deb.name, "wb") as f:
                shutil.copyfileobj(r, f)
            sh("chroot", root, "dpkg", "-i", "--force-depends", f"/tmp/{deb.name}")

        runs: dict[str, list[float]] = {"ours": [], "debian": []}
        try:
            for _ in range(args.repeat):  # interleaved: the shared machine's moods hit both alike
                ours_root, deb_root = fresh("ours"), fresh("deb")
                runs["ours"].append(timed(lambda r=ours_root: ours(r)))  # type: ignore[misc]
                runs["debian"].append(timed(lambda r=deb_root: debian(r)))  # type: ignore[misc]
        finally:
            server.terminate()
            server.wait()
        whole_bytes = pkg.stat().st_size
        log = [line.split() for line in (tmp / "nginx/access.log").read_text().splitlines()]
        ours_bytes = [int(b) for u, _, b in log if u.startswith("/bh/")]
        deb_bytes = [int(b) for u, _, b in log if u.startswith("/debian/")]
    ours_s, deb_s = statistics.median(runs["ours"]), statistics.median(runs["debian"])
    return report(
        "binhost_install",
        {
            "distkernel_install_from_nginx_s": round(ours_s, 3),
            "dpkg_i_debian_image_s": round(deb_s, 3),
            "time_ratio": ratio(ours_s, deb_s),
            "distkernel_bytes_per_install": sum(ours_bytes) // args.repeat,
            "whole_package_bytes": whole_bytes,
            "bytes_vs_whole_package": ratio(sum(ours_bytes) / args.repeat, whole_bytes),
            "debian_bytes_per_install": sum(deb_bytes) // args.repeat,
            "distkernel_requests_per_install": len(ours_bytes) / args.repeat,
            "debian_package": deb.name,
            "package": pkg.name,
            "repeat": args.repeat,
        },
    )


if __name__ == "__main__":
    main()
