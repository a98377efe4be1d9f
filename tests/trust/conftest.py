from __future__ import annotations

import pytest

from distkernel.trust.keys import KeySet
from tests.trust.helpers import make_keys


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> KeySet:
    """One key set for the session (RSA-4096 generation takes a second or two)."""
    return make_keys(tmp_path_factory.mktemp("keys") / "k")


@pytest.fixture(scope="session")
def other_keys(tmp_path_factory: pytest.TempPathFactory) -> KeySet:
    return make_keys(tmp_path_factory.mktemp("other-keys") / "k")
