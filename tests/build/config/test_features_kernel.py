"""Every feature profile on an x86_64 defconfig base: each option took, or the profile
marks it optional with a reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from distkernel.build.config.features import known_features, load_feature
from tests.build.config.conftest import Resolve

pytestmark = pytest.mark.kernel


@pytest.mark.parametrize("name", known_features())
def test_feature_on_defconfig(name: str, resolve: Resolve, defconfig: Path) -> None:
    r = resolve(f'base = "file:{defconfig}"\nfeatures = ["{name}"]')
    assert not r.report.misses, [(e.symbol, e.requested, e.effective, e.reason) for e in r.report.misses]
    for e in r.report.skipped:
        assert e.optional and e.reason, e
    assert len(r.report.entries) == len({s.symbol for s in load_feature(name).settings})
