"""core.paths: plain names, the write check under a root, one-line boot text, and the
root's own paths kept in its one table."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

from distkernel.core import paths
from distkernel.core.errors import UserError
from distkernel.core.paths import one_line, plain_name, under_root

SRC = Path(__file__).resolve().parents[2] / "src" / "distkernel"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("", "is empty"),
        (".", "is '.'"),
        ("..", "is '..'"),
        ("a/b", "path separator"),
        ("6.1.192-x/../../../../ESCAPED", "path separator"),
        ("a\\b", "path separator"),
        ("6.1.0\noptions init=/bin/sh", "control character"),
        ("6.1.0\x00", "control character"),
        ("6.1.0\x7f", "control character"),
        ("x" * 201, "201 characters"),
        (None, "not a string"),
        (42, "not a string"),
    ],
)
def test_plain_name_refuses_what_is_not_one(value: object, problem: str) -> None:
    with pytest.raises(UserError) as e:
        plain_name(value, "pkg.tar.zst: metadata.json kernel_release")
    assert e.value.message.startswith("pkg.tar.zst: metadata.json kernel_release: ")
    assert problem in e.value.message and "\n" not in e.value.message


@pytest.mark.parametrize("value", ["6.1.192-distkernel", "6.1.0-13-amd64", "5.15.0+", "a b", ".hidden", "x" * 200])
def test_plain_name_accepts_plain_names(value: str) -> None:
    assert plain_name(value, "x") == value


def test_one_line() -> None:
    assert one_line("console=ttyS0 root=/dev/vda\tro", "--cmdline") == "console=ttyS0 root=/dev/vda\tro"
    for bad in ("ro\ninit=/bin/sh", "ro\rx", "\x1b[2J"):
        with pytest.raises(UserError, match=r"^--cmdline: holds a newline or control character"):
            one_line(bad, "--cmdline")


def test_under_root_follows_links_inside_and_refuses_links_out(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "usr/lib").mkdir(parents=True)
    os.symlink("usr/lib", root / "lib")  # merged /usr: inside the root
    assert under_root(root, "lib/modules/6.1.0") == root / "usr/lib/modules/6.1.0"
    (tmp_path / "host").mkdir()
    os.symlink(tmp_path / "host", root / "boot")  # absolute: out of the root
    with pytest.raises(UserError, match="leads out of the root"):
        under_root(root, "boot/vmlinuz")
    os.symlink("../../host", root / "usr/escape")
    with pytest.raises(UserError, match="leads out of the root"):
        under_root(root, "usr/escape/x")
    os.symlink("/etc/passwd", root / "usr/final")  # the final component itself is not followed
    assert under_root(root, "usr/final") == root / "usr/final"


@pytest.mark.parametrize("rel", ["../x", "a/../../x", "/etc/passwd", "a//b", "a/./b", "", "a/\n/b"])
def test_under_root_refuses_paths_that_are_not_plain(tmp_path: Path, rel: str) -> None:
    with pytest.raises(UserError):
        under_root(tmp_path, rel)


def test_under_root_of_the_host_root() -> None:
    assert under_root(Path("/"), "var/lib/distkernel/state.json") == Path(os.path.realpath("/var/lib")) / (
        "distkernel/state.json"
    )


TOPS = ("var/lib/distkernel", "var/log/distkernel", "var/cache/distkernel", "etc/distkernel")


def test_the_table_holds_relative_plain_paths() -> None:
    table = {k: v for k, v in vars(paths).items() if k.isupper() and isinstance(v, str)}
    assert set(TOPS) <= set(table.values())
    for name, rel in table.items():
        assert rel.startswith(TOPS), name
        paths.relative(rel, name)


def _string_constants(tree: ast.AST) -> list[tuple[int, str]]:
    """String constants that are not docstrings (comments are not in the tree)."""
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    ]


def test_the_roots_own_paths_are_only_spelled_in_the_table() -> None:
    found = [
        f"{f.relative_to(SRC)}:{line}: {text!r}"
        for f in sorted(SRC.rglob("*.py"))
        if f != SRC / "core/paths.py"
        for line, text in _string_constants(ast.parse(f.read_text()))
        if text.lstrip("/").startswith(TOPS)  # a path literal (help texts may name them)
    ]
    assert found == []
