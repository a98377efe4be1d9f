from __future__ import annotations

from tests.conftest import cli, env_with


def test_doctor_lists_every_tool_and_how_to_install_the_missing() -> None:
    run = cli("doctor", "--json")
    doc = run.json()
    names = {t["name"] for t in doc["tools"]}
    assert {"make", "gcc", "qemu-x86_64", "busybox", "dracut", "sbsign", "ovmf"} <= names
    assert run.code == (3 if doc["missing_required"] else 0)
    missing = [t["package"] for t in doc["tools"] if not t["found"]]
    if missing:
        assert doc["install"].startswith("apt-get install") and all(p in doc["install"] for p in missing)


def test_doctor_without_path_reports_missing_and_exits_3() -> None:
    run = cli("doctor", env=env_with(PATH="/nonexistent"))
    assert run.code == 3
    assert "MISSING" in run.out and "apt-get install -y --no-install-recommends" in run.out
