from __future__ import annotations

from pathlib import Path

import pytest

from distkernel.build.config.report import build_report
from distkernel.build.config.values import Origin, Setting, merge_into, parse_fragment, read_config
from distkernel.core.errors import UserError


def test_fragment_lines_carry_their_origin(tmp_path: Path) -> None:
    f = tmp_path / "x.config"
    f.write_text('# comment\n\nCONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C="text"\n')
    settings = parse_fragment(f, "x.config")
    assert [(s.symbol, s.value, str(s.origin)) for s in settings] == [
        ("CONFIG_A", "y", "x.config:3"),
        ("CONFIG_B", "n", "x.config:4"),
        ("CONFIG_C", '"text"', "x.config:5"),
    ]


def test_a_bad_fragment_line_names_file_and_line(tmp_path: Path) -> None:
    f = tmp_path / "bad.config"
    f.write_text("CONFIG_A=y\nCONFIG_B y\n")
    with pytest.raises(UserError, match=r"bad.config:2: not a config line: `CONFIG_B y`"):
        parse_fragment(f)


def test_merge_moves_requested_values_last_in_order(tmp_path: Path) -> None:
    text = "CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=m\n"
    merged = merge_into(text, [("CONFIG_B", "n"), ("CONFIG_A", "n"), ("CONFIG_D", "m"), ("CONFIG_B", "y")])
    assert merged == "CONFIG_C=m\n# CONFIG_A is not set\nCONFIG_D=m\nCONFIG_B=y\n"
    (tmp_path / "c").write_text(merged)
    assert read_config(tmp_path / "c") == {"CONFIG_C": "m", "CONFIG_A": "n", "CONFIG_D": "m", "CONFIG_B": "y"}


def test_report_later_input_wins_and_keeps_what_it_overrode() -> None:
    requested = [
        Setting("CONFIG_X", "y", Origin("a.config", 1)),
        Setting("CONFIG_X", "m", Origin("b.config", 7)),
        Setting("CONFIG_Y", "y", Origin("a.config", 2)),
        Setting("CONFIG_Z", "n", Origin("a.config", 3)),
    ]
    report = build_report("base tinyconfig", {"CONFIG_X": "n"}, requested, {"CONFIG_X": "m", "CONFIG_Y": "n"})
    x, y, z = report.entries
    assert x.took and str(x.origin) == "b.config:7"
    assert [(o.value, str(o.origin)) for o in x.overrides] == [("n", "base tinyconfig"), ("y", "a.config:1")]
    assert x.conflict
    assert not y.took and y.effective == "n" and y.reason is None
    assert z.took  # absent from the effective config reads as n
    assert report.misses == (y,)
    assert report.to_json()["missed"] == 1


def test_a_file_the_recipe_only_names_is_not_quoted(tmp_path: Path) -> None:
    """A fragment outside the recipe's folder (say /etc/shadow, named by a recipe from
    someone else) is never quoted in the error: only its file and line."""
    f = tmp_path / "secret.config"
    f.write_text("the secret\n")
    with pytest.raises(UserError) as e:
        parse_fragment(f, echo=False)
    assert "secret.config:1: not a config line (expected" in str(e.value) and "the secret" not in str(e.value)
