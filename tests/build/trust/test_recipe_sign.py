"""The recipe's [sign] table: paths checked with file:line errors; key fingerprints (never
the keys) in the package cache key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from distkernel.build.recipe import load_recipe
from distkernel.build.trust.keys import DB_CRT, DB_KEY, MODULE_PEM, PACKAGE_KEY, KeySet, load_certificates
from distkernel.build.trust.modsign import KEY_LINK, SIGNING_X509, link_module_key
from distkernel.core.errors import UserError
from distkernel.workflows.pipeline import inputs_key

BASE = """\
[kernel]
name = "signed"
source = "debian:linux-source-6.1"

[config]
base = "tinyconfig"

[sign]
"""


def write(tmp_path: Path, sign: str) -> Path:
    path = tmp_path / "r.toml"
    path.write_text(BASE + sign)
    return path


def sign_table(keys: KeySet) -> str:
    return "\n".join(
        f'{k} = "{keys.path(v)}"'
        for k, v in (
            ("package", PACKAGE_KEY),
            ("modules", MODULE_PEM),
            ("secureboot_key", DB_KEY),
            ("secureboot_cert", DB_CRT),
        )
    )


def test_sign_table_reads_paths(tmp_path: Path, keys: KeySet) -> None:
    recipe = load_recipe(write(tmp_path, sign_table(keys)))
    assert recipe.sign.modules == keys.path(MODULE_PEM)
    assert recipe.sign.secureboot_cert == keys.path(DB_CRT)


@pytest.mark.parametrize(
    ("sign", "needle"),
    [
        ('modules = "nope.pem"', "r.toml:9: sign.modules: file not found"),
        ('colour = "x"', "sign.colour: unknown key"),
        ("secureboot_key = '{db}'", "secureboot_key and secureboot_cert go together"),
    ],
)
def test_sign_table_errors_name_file_and_line(tmp_path: Path, keys: KeySet, sign: str, needle: str) -> None:
    with pytest.raises(UserError, match=needle.replace(".", r"\.")):
        load_recipe(write(tmp_path, sign.format(db=keys.path(DB_KEY))))


def test_fingerprints_not_keys_enter_the_cache_key(tmp_path: Path, keys: KeySet, other_keys: KeySet) -> None:
    key, doc = inputs_key(load_recipe(write(tmp_path, sign_table(keys))))
    (tmp_path / "other").mkdir()
    other, _ = inputs_key(load_recipe(write(tmp_path / "other", sign_table(other_keys))))
    assert key != other
    text = json.dumps(doc)
    assert keys.package_fingerprint in text and keys.module_fingerprint in text and keys.db_fingerprint in text
    for name in (PACKAGE_KEY, MODULE_PEM, DB_KEY):
        body = keys.path(name).read_text().split("-----")[2].split()[0]
        assert body not in text


def test_a_certificate_built_in_from_another_key_is_dropped(tmp_path: Path, keys: KeySet, other_keys: KeySet) -> None:
    """Kbuild would keep it (the key file is older): sign-file would refuse every module."""
    recipe = load_recipe(write(tmp_path, f'modules = "{keys.path(MODULE_PEM)}"'))
    embedded = tmp_path / "obj" / SIGNING_X509
    embedded.parent.mkdir(parents=True)
    ours = load_certificates(keys.path(MODULE_PEM), "ours")[0].public_bytes(serialization.Encoding.DER)
    embedded.write_bytes(ours)
    link_module_key(recipe, tmp_path / "obj")
    assert (tmp_path / "obj" / KEY_LINK).resolve() == keys.path(MODULE_PEM).resolve()
    assert embedded.read_bytes() == ours
    theirs = load_certificates(other_keys.path(MODULE_PEM), "theirs")[0]
    embedded.write_bytes(theirs.public_bytes(serialization.Encoding.DER))
    link_module_key(recipe, tmp_path / "obj")
    assert not embedded.exists()
