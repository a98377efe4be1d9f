"""What ran where, read back job by job from a distributed build's launcher log:
distcc's client log (DISTCC_LOG) or icecc's (ICECC_LOGFILE). A compile job is a file
make asked to compile; compiler probes (Kbuild's cc-option and as-instr on /dev/null or
stdin) and preprocessing-only calls are not, and are never counted."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

# distcc's client log (info level), one client process per job ("compile from" starts
# one): "exec on HOST" where it was sent, "compile FILE on HOST completed ok" where it
# ran ("localhost" for this machine; FILE "(null)" for a probe or a preprocessing call,
# always run here). A host that dies with a job gives "no answer" (distcc then sends the
# job to another host, or compiles it here); one that is down refuses the connection;
# "failed to distribute ... running locally" is a job this machine compiled instead
# (naming no host when every host was backed off by then).
_DISTCC_LINE = re.compile(r"^distcc\[(\d+)\] (.*)$")
_DISTCC_START = "compile from "
_DISTCC_DONE = re.compile(r"^compile (\S+) on (\S+) completed ok$")
_DISTCC_NO_FILE = "(null)"
_DISTCC_EXEC = re.compile(r"^exec on (\S+?): ")
_DISTCC_LOST = re.compile(r"^\(dcc_r_result_header\) ERROR: server provided no answer")
_DISTCC_UNREACHABLE = re.compile(r"^ERROR: (?:nonblocking )?connect to (\S+) failed")
_DISTCC_FALLBACK = re.compile(r"^(?:\(\w+\) )?Warning: failed to distribute(?: \S+ to (\S+))?, running locally")
PUMP_FAILED = "failed to get includes from include server"

# icecc's client log (debug level), one client process per job ("invoked as" starts
# one, with the compiler's arguments): the host the scheduler gave it, a job built here
# (a preprocessing call, or one icecc keeps: linking, stdin, an unsupported language),
# and a remote job that failed and was compiled here after all.
_ICECC_LINE = re.compile(r"^ICECC\[(\d+)\] [^:]+:\d+:\d+: (.*)$")
_ICECC_START = "invoked as: "
_ICECC_HOST = re.compile(r"^Have to use host (\S+) ")
_ICECC_LOCAL = re.compile(r"^(?:building myself|<building_local>)")
_ICECC_PREPROCESS = "preprocessing, building locally"
_ICECC_FORCED = "local build forced"
_PROBE_INPUTS = ("/dev/null", "-")
# A call with no source file among its arguments (`gcc -print-file-name=include`,
# `--version`) compiles nothing: distcc logs it as "(null)"; icecc as a local build.
_SOURCE = re.compile(r"\.(?:c|S|s|i|cc|cpp|cxx)$")


@dataclass(frozen=True)
class Counts:
    """A launcher log's counts."""

    remote: dict[str, int]  # host -> compile jobs that ran there
    local: int  # compile jobs that ran on this machine
    failed: dict[str, int]  # host -> compile jobs it failed (died with them, or refused them)
    fell_back: int  # jobs compiled here because a host failed
    retried: int  # jobs a failed host lost that another host compiled


@dataclass
class _Job:
    """One client's job, as its log lines come."""

    host: str = "localhost"  # where it was last sent
    failed_on: set[str] = field(default_factory=set)
    fell_back: bool = False
    counted: bool = True  # a compile job (not a probe, not preprocessing)
    local: bool = False


def host_word(address: str, hosts: tuple[str, ...]) -> str:
    """The host word (as given) of an address distcc names in an error (HOST:PORT)."""
    for word in hosts:
        if word == address or word.startswith((f"{address}/", f"{address},")):
            return word
    return address


def read_distcc(text: str, hosts: tuple[str, ...]) -> Counts:
    remote: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    local = fell_back = retried = 0
    jobs: dict[str, _Job] = {}  # client pid -> its job (pids are reused over a build)

    def fail(job: _Job, host: str) -> None:
        if host != "localhost" and host not in job.failed_on:  # one failure per job and host
            job.failed_on.add(host)
            failed[host] += 1

    for line in text.splitlines():
        if not (m := _DISTCC_LINE.match(line)):
            continue
        pid, rest = m.groups()
        if rest.startswith(_DISTCC_START):
            jobs[pid] = _Job()
            continue
        job = jobs.setdefault(pid, _Job())
        if m := _DISTCC_EXEC.match(rest):
            job.host = m.group(1)
        elif _DISTCC_LOST.match(rest):
            fail(job, job.host)
        elif m := _DISTCC_UNREACHABLE.match(rest):
            fail(job, host_word(m.group(1), hosts))
        elif m := _DISTCC_FALLBACK.match(rest):
            if m.group(1):
                fail(job, m.group(1))
            job.fell_back = True
        elif m := _DISTCC_DONE.match(rest):
            del jobs[pid]
            if m.group(1) == _DISTCC_NO_FILE:
                continue
            if m.group(2) == "localhost":
                local += 1
                fell_back += job.fell_back
            else:
                remote[m.group(2)] += 1
                retried += bool(job.failed_on)
    return Counts(dict(remote), local, dict(failed), fell_back, retried)


def read_icecc(text: str) -> Counts:
    jobs: list[_Job] = []
    current: dict[str, _Job] = {}  # client pid -> its job
    for line in text.splitlines():
        if not (m := _ICECC_LINE.match(line)):
            continue
        pid, rest = m.groups()
        if rest.startswith(_ICECC_START):
            # (A remote job has -c or -S; its source word can come glued to another
            # client's line, which icecc writes to the same file unlocked.)
            words = rest.split()[1:]
            named = "-c" in words or "-S" in words or any(_SOURCE.search(w) for w in words)
            compiles = named and not any(w in _PROBE_INPUTS for w in words)
            started = _Job(host="", counted=compiles)
            current[pid] = started
            jobs.append(started)
            continue
        job = current.get(pid)
        if job is None:  # a line of a helper process (icecc's own preprocessor)
            continue
        if m := _ICECC_HOST.match(rest):
            job.host = m.group(1)
        elif rest.startswith(_ICECC_PREPROCESS):
            job.counted = False
        elif _ICECC_LOCAL.match(rest):
            job.local = True
        elif _ICECC_FORCED in rest and job.host:
            job.failed_on.add(job.host)
            job.fell_back = job.local = True
    remote: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    local = fell_back = 0
    for job in jobs:
        if not job.counted:
            continue
        failed.update(job.failed_on)
        fell_back += job.fell_back
        if job.local or not job.host:
            local += 1
        else:
            remote[job.host] += 1
    return Counts(dict(remote), local, dict(failed), fell_back, 0)
