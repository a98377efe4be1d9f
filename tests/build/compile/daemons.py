"""Real distccd and icecream daemons on 127.0.0.1 for tests: each on its own port with
its own log file, in its own process group (so a test can kill one as a dead host),
stopped by the test that started it."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(check: object, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} not ready within {seconds:g} s")


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command name) of every process, from /proc."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        out[int(entry.name)] = (int(stat[stat.rindex(")") + 2 :].split()[1]), name)
    return out


def descendants(pid: int) -> dict[int, str]:
    """The processes under PID (pid -> command name), however they regrouped: distccd
    runs each compiler in a process group of its own."""
    table = _processes()
    found: dict[int, str] = {}
    for child, (_, name) in table.items():
        up, seen = child, 0
        while up > 1 and seen < 64:
            up, seen = table.get(up, (0, ""))[0], seen + 1
            if up == pid:
                found[child] = name
                break
    return found


@dataclass
class Daemon:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    port: int

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.is_file() else ""

    def kill(self) -> None:
        """Die at once, with everything under it (preforked distccd workers and the
        compilers they run): a dead host."""
        under = descendants(self.proc.pid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        for pid in under:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Distccd(Daemon):
    limit: int = 2

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}/{self.limit}"

    def jobs(self) -> int:
        """Compile jobs this daemon finished, from its own log."""
        return len(re.findall(r" COMPILE_OK ", self.text()))

    def compiling(self) -> bool:
        """A compiler runs under this daemon now: a job is in its hands."""
        return any(name in ("cc1", "cc1plus", "as") for name in descendants(self.proc.pid).values())


def start_distccd(folder: Path, name: str, limit: int = 2) -> Distccd:
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = folder / f"{name}.log"
    # distccd started as root drops to its own user, who cannot open a log file in a
    # root-owned folder: it logs to stderr, which goes to the file we opened.
    argv = ["distccd", "--daemon", "--no-detach", "--listen", "127.0.0.1", "--port", str(port)]
    argv += ["--allow", "127.0.0.1", "--jobs", str(limit), "--log-stderr", "--log-level", "info"]
    with open(log, "wb") as logf:
        proc = subprocess.Popen(argv, stdout=logf, stderr=logf, stdin=subprocess.DEVNULL, start_new_session=True)
    d = Distccd(name, proc, log, port, limit)
    try:
        _wait(lambda: _listening(port), 20, f"distccd {name}")
    except AssertionError:
        d.stop()
        raise
    return d


@contextlib.contextmanager
def distccds(folder: Path, count: int = 2, limit: int = 2) -> Iterator[list[Distccd]]:
    started: list[Distccd] = []
    try:
        for n in range(count):
            started.append(start_distccd(folder, f"distccd{n + 1}", limit))
        yield started
    finally:
        for d in started:
            d.stop()


@dataclass
class Icecream:
    """An icecream network of its own: a scheduler, the client's local daemon (which
    compiles nothing itself: -m 0) and one compile host, all on 127.0.0.1."""

    scheduler: Daemon
    local: Daemon
    host: Daemon
    socket: Path

    def env(self) -> dict[str, str]:
        """What the client (icecc) needs to find this network's local daemon; icecream's
        own test hook for daemons that share one machine."""
        return {"ICECC_TEST_SOCKET": str(self.socket), "ICECC_TEST_REMOTEBUILD": "1"}

    def remote_jobs(self) -> int:
        """Compile jobs the host finished, from its own log: each "remote compile for
        file F" of a worker whose compilation then completed with exit code 0, bar
        compiler probes (F is /dev/null)."""
        files: dict[str, str] = {}
        done = 0
        for pid, what in re.findall(r"^\[(\d+)\] [^:]+:\d+:\d+: (.*)$", self.host.text(), re.MULTILINE):
            if what.startswith("remote compile for file "):
                files[pid] = what.removeprefix("remote compile for file ")
            elif what == "Remote compilation completed with exit code 0":
                done += files.pop(pid, "/dev/null") != "/dev/null"
        return done


@contextlib.contextmanager
def icecream(folder: Path) -> Iterator[Icecream]:
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o777)  # the daemons drop to the icecc user and write their logs here
    net = f"distkernel-test-{os.getpid()}"
    sched_port, udp = free_port(), free_port()
    env = {**os.environ, "ICECC_TESTS": "1", "ICECC_TEST_SCHEDULER_PORTS": f"{sched_port}:{udp}"}
    started: list[Daemon] = []

    def start(name: str, argv: list[str], port: int, extra: dict[str, str] | None = None) -> Daemon:
        log = folder / f"{name}.log"
        proc = subprocess.Popen(
            [*argv, "-l", str(log), "-vvv"],
            env={**env, **(extra or {})},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        started.append(Daemon(name, proc, log, port))
        return started[-1]

    try:
        scheduler = start("scheduler", ["icecc-scheduler", "-p", str(sched_port), "-n", net], sched_port)

        def daemon(name: str, *more: str) -> Daemon:
            port = free_port()
            sock = folder / f"{name}.socket"
            argv = ["iceccd", "-s", f"127.0.0.1:{sched_port}", "-n", net, "-N", name, "-p", str(port)]
            argv += ["-b", str(folder / f"envs-{name}"), *more]
            return start(name, argv, port, {"ICECC_TEST_SOCKET": str(sock)})

        local = daemon("local", "--no-remote", "-m", "0")
        host = daemon("host", "-m", "2")
        for d in (local, host):
            _wait(lambda d=d: "Connected to scheduler" in d.text(), 60, f"iceccd {d.name}")
        yield Icecream(scheduler, local, host, folder / "local.socket")
    finally:
        for d in reversed(started):
            d.stop()
