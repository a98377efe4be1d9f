"""export --format gpkg: Portage's own gpkg reader (portage.gpkg) checks the Manifest,
reads the metadata and unpacks the image; builds of one version with two BUILD_IDs lie
side by side in one PKGDIR."""

from __future__ import annotations

import hashlib
import json
import subprocess
import tarfile
from pathlib import Path

import portage
import pytest
from portage.exception import DigestException
from portage.gpkg import gpkg

from tests.conftest import Built, assert_user_facing_error, cli

pytestmark = pytest.mark.kernel


@pytest.fixture(scope="module")
def pkgdir(default_package: Built, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pkgdir")
    for build_id in ("1", "2"):
        run = cli("export", default_package.package, "--format", "gpkg", "--out", out, "--build-id", build_id)
        assert run.code == 0, run.err
    return out


def _reader(path: Path, config: Path) -> object:
    config.mkdir(exist_ok=True)
    settings = portage.config(config_root=str(config), target_root=str(config))
    return gpkg(settings, path.name.removesuffix(".gpkg.tar"), str(path))


def test_portage_reads_the_metadata_and_unpacks_the_image(pkgdir: Path, default_package: Built, tmp_path: Path) -> None:
    meta = default_package.metadata
    release, version = meta["kernel_release"], meta["version"]
    path = pkgdir / "sys-kernel/distkernel-qemu-minimal" / f"distkernel-qemu-minimal-{version}-1.gpkg.tar"
    reader = _reader(path, tmp_path / "config")
    fields = reader.get_metadata()  # type: ignore[attr-defined]
    assert fields["CATEGORY"] == b"sys-kernel\n"
    assert fields["PF"] == f"distkernel-qemu-minimal-{version}\n".encode()
    assert fields["SLOT"] == f"{release}\n".encode()
    assert fields["BUILD_ID"] == b"1\n"
    assert fields["EAPI"] == b"8\n"
    reader.decompress(str(tmp_path / "image"))  # type: ignore[attr-defined]
    image = tmp_path / "image"
    manifest = json.loads(
        subprocess.run(
            ["tar", "--zstd", "-xOf", default_package.package, "manifest.json"], capture_output=True, check=True
        ).stdout
    )
    kernel = (image / f"boot/vmlinuz-{release}").read_bytes()
    assert hashlib.sha256(kernel).hexdigest() == manifest["files"]["kernel/vmlinuz"]["sha256"]
    ext4 = next(p for p in manifest["files"] if p.startswith("modules/") and p.endswith("ext4.ko"))
    assert (image / "lib/modules" / release / ext4.removeprefix("modules/")).is_file()
    assert (image / f"usr/src/linux-{release}/Makefile").is_file()
    assert (image / "lib/modules" / release / "build").readlink() == Path(f"/usr/src/linux-{release}")


def test_two_build_ids_coexist_in_one_pkgdir(pkgdir: Path, default_package: Built) -> None:
    version = default_package.metadata["version"]
    names = sorted(p.name for p in (pkgdir / "sys-kernel/distkernel-qemu-minimal").iterdir())
    assert names == [f"distkernel-qemu-minimal-{version}-{n}.gpkg.tar" for n in (1, 2)]
    with tarfile.open(pkgdir / "sys-kernel/distkernel-qemu-minimal" / names[1]) as tar:
        tops = {name.split("/")[0] for name in tar.getnames()}
        assert tops == {f"distkernel-qemu-minimal-{version}-2"}
        assert tar.getnames()[0].endswith("/gpkg-1") and tar.getnames()[-1].endswith("/Manifest")


def test_a_tampered_image_is_refused_by_portage(pkgdir: Path, tmp_path: Path) -> None:
    original = next((pkgdir / "sys-kernel/distkernel-qemu-minimal").iterdir())
    data = bytearray(original.read_bytes())
    with tarfile.open(original) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith("image.tar.zst"))
    data[member.offset_data + 100] ^= 0xFF
    bad = tmp_path / original.name
    bad.write_bytes(data)
    with pytest.raises(DigestException):
        _reader(bad, tmp_path / "config").decompress(str(tmp_path / "image"))  # type: ignore[attr-defined]


def test_export_is_reproducible(pkgdir: Path, default_package: Built, tmp_path: Path) -> None:
    run = cli("export", default_package.package, "--format", "gpkg", "--out", tmp_path, "--json")
    assert run.code == 0, run.err
    again = Path(run.json()["files"][0]["path"])
    assert again.read_bytes() == (pkgdir / again.relative_to(tmp_path)).read_bytes()


def test_a_build_id_below_one_is_refused(default_package: Built, tmp_path: Path) -> None:
    run = cli("export", default_package.package, "--format", "gpkg", "--out", tmp_path, "--build-id", "0")
    assert_user_facing_error(run, 2, "--build-id")
