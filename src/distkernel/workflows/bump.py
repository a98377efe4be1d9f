"""`distkernel bump`: move every pinned recipe of a folder to the newest version of its
series (Debian's archive through apt, or a kernel.org-style feed checked with gpgv),
rewriting the pin and checksum in place (the file's comments and layout stay), bringing a
savedconfig forward with the config upgrade, writing a changelog entry and, on request,
one git commit per series."""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from distkernel.build.feeds import debian, kernelorg
from distkernel.build.recipe import load_recipe
from distkernel.build.recipe_model import KernelSpec, Recipe, find_line
from distkernel.core import cache
from distkernel.core.errors import UserError
from distkernel.core.tools import call

CHANGELOG = "CHANGELOG.md"


@dataclass(frozen=True)
class Pin:
    version: str
    values: dict[str, str]  # [kernel] key -> new value

    def apply(self, k: KernelSpec) -> KernelSpec:
        """K as the rewritten recipe will give it."""
        v = self.values
        return replace(k, version=v["version"], sha256=v.get("sha256", k.sha256), source=v.get("source", k.source))


@dataclass(frozen=True)
class Bumped:
    recipe: Path
    series: str
    old: str
    new: str
    values: dict[str, str]
    config: Path | None = None  # the savedconfig written for the new version
    questions: tuple[tuple[str, str, str], ...] = ()  # option, value chosen, prompt
    summary: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "recipe": str(self.recipe),
            "series": self.series,
            "from": self.old,
            "to": self.new,
            "changed": self.values,
            "config": str(self.config) if self.config else None,
            "config_summary": self.summary,
            "questions": [{"option": o, "value": v, "prompt": p} for o, v, p in self.questions],
        }


@dataclass(frozen=True)
class Current:
    recipe: Path
    series: str
    version: str  # "" when the recipe pins nothing


@dataclass(frozen=True)
class BumpResult:
    bumped: tuple[Bumped, ...]
    current: tuple[Current, ...]
    commits: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "bumped": [b.to_json() for b in self.bumped],
            "current": [{"recipe": str(c.recipe), "series": c.series, "version": c.version} for c in self.current],
            "commits": list(self.commits),
        }


def find_recipes(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise UserError(f"{folder}: not a folder of recipes; give the folder that holds the *.toml recipes")
    return sorted(p for p in folder.glob("*.toml") if p.is_file())


class Feeds:
    """Each feed asked once per run: ten recipes of one series cost one question."""

    def __init__(self, debian_names: list[str]) -> None:
        self._memo: dict[tuple[str, ...], Any] = {}
        if debian_names:  # one apt question for every Debian series of the folder
            for name, found in debian.versions_of(debian_names).items():
                self._memo[("debian", name)] = found

    def _once(self, key: tuple[str, ...], make: Callable[[], Any]) -> Any:
        if key not in self._memo:
            self._memo[key] = make()
        return self._memo[key]

    def newest(self, recipe: Recipe) -> Pin | None:
        k = recipe.kernel
        where = f"{recipe.line_of('kernel', 'source')}: "
        if k.source_kind == "debian":
            found: list[str] = self._once(("debian", k.source_ref), lambda: debian.versions(k.source_ref))
            if not found:
                raise UserError(f"{where}apt knows no {k.source_ref}; run apt-get update or fix kernel.source")
            newest = found[0]
            if newest == k.version:
                return None
            values = {"version": newest}
            if k.sha256:  # the .deb's sha256 from the archive's signed Packages file
                values["sha256"] = debian.deb_sha256(k.source_ref, newest, where)
            return Pin(newest, values)
        if k.keyring is None:
            raise UserError(
                f"{recipe.line_of('kernel', 'feed')}: kernel.feed: a feed is followed only with kernel.keyring"
            )
        release = self._once(("feed", k.feed, k.series), lambda: kernelorg.newest(k.feed, k.series, where))
        if release is None or kernelorg.version_key(release.version) <= kernelorg.version_key(k.version):
            return None
        sha = kernelorg.signed_sha256(release.source, k.keyring, f"{recipe.line_of('kernel', 'keyring')}: ")
        return Pin(release.version, {"source": f"url:{release.source}", "sha256": sha, "version": release.version})


def edit_kernel_values(text: str, values: dict[str, str]) -> str:
    """TEXT with `[kernel]` KEY = "value" rewritten in place (a trailing comment kept) or,
    for a key the table lacks, added after `source`."""
    lines = text.splitlines(keepends=True)
    for key, value in values.items():
        quoted = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
        number = find_line(text, "kernel", key)
        line = lines[number - 1]
        if re.match(rf"^\s*(kernel\.)?{re.escape(key)}\s*=", line):
            value_re = r'=\s*("(?:[^"\\]|\\.)*"|\'[^\']*\')'
            lines[number - 1] = re.sub(value_re, "= " + quoted.replace("\\", "\\\\"), line, count=1)
        else:
            after = find_line(text, "kernel", "source")
            lines.insert(after, f"{key} = {quoted}\n")
        text = "".join(lines)
    return text


@dataclass(frozen=True)
class Forwarded:
    """A savedconfig brought forward, not yet written into the recipes' folder."""

    config: Path  # the upgraded config (in the cache)
    saved: Path  # where it goes: <savedconfig>/config-<new version>
    questions: tuple[tuple[str, str, str], ...]  # option, value chosen, prompt
    summary: str


def _forward_config(recipe: Recipe, kernel: KernelSpec) -> Forwarded | None:
    """The newest savedconfig of RECIPE brought to KERNEL's source by the config upgrade."""
    folder = recipe.config.savedconfig
    if folder is None:
        return None
    from distkernel.build.config.savedconfig import version_tuple
    from distkernel.build.config.upgrade import upgrade

    saved = sorted((p for p in folder.glob("config-*") if p.is_file()), key=lambda p: version_tuple(p.name[7:]))
    if not saved:
        return None
    done = upgrade(saved[-1], kernel.source, kernel.arch, "bump.log", kernel=kernel)
    questions = tuple((k, v, prompt) for k, (v, prompt) in done.questions.items())
    return Forwarded(done.config, folder / f"config-{done.version}", questions, done.summary())


def _changelog_entry(series: str, items: list[Bumped], today: str) -> str:
    lines = [f"## {today} linux {series}: {items[0].old or '(unpinned)'} -> {items[0].new}", ""]
    for b in items:
        lines.append(f"- {b.recipe.name}: {b.old or '(unpinned)'} -> {b.new}")
        if b.config is not None:
            lines.append(f"  - config brought forward to {b.config.name}: {b.summary}")
            lines += [f"    - new question {o}={v}" + (f" ({p})" if p else "") for o, v, p in b.questions]
    return "\n".join(lines) + "\n\n"


def _write_changelog(folder: Path, entry: str) -> Path:
    path = folder / CHANGELOG
    old = path.read_text() if path.is_file() else "# Changelog\n\n"
    head, sep, rest = old.partition("\n\n")
    new = f"{head}{sep}{entry}{rest}" if head.startswith("# ") else entry + old
    cache.atomic_write_text(path, new)
    return path


def _git_top(folder: Path) -> Path:
    done = call(["git", "-C", folder, "rev-parse", "--show-toplevel"], ok=None)
    if done.code != 0:
        raise UserError(
            f"{folder}: --commit needs the recipes in a git repository; run `git init` there or drop --commit"
        )
    return Path(done.output.strip())


def _commit(top: Path, series: str, items: list[Bumped], paths: list[Path]) -> str:
    names = ", ".join(sorted({b.recipe.stem for b in items}))
    subject = f"linux {series}: bump to {items[0].new}"
    body = [f"Moves {names} from {items[0].old or 'an unpinned source'} to {items[0].new}."]
    for b in items:
        if b.config is not None:
            body.append(f"{b.recipe.stem}: config brought forward ({b.summary}).")
            body += [f"  {o}={v}" + (f"  # {p}" if p else "") for o, v, p in b.questions]
    message = subject + "\n\n" + "\n".join(body) + "\n"
    files = [str(p) for p in paths]
    call(["git", "-C", top, "add", "--", *files], what="git add")
    call(["git", "-C", top, "commit", "-q", "-m", message, "--", *files], what="git commit")
    return call(["git", "-C", top, "rev-parse", "HEAD"], what="git rev-parse").output.strip()


def bump(folder: Path, series: tuple[str, ...] = (), commit: bool = False) -> BumpResult:
    folder = folder.resolve()  # git runs in the repository's top folder: every path given to it is absolute
    top = _git_top(folder) if commit else None
    recipes = [load_recipe(p) for p in find_recipes(folder)]
    feeds = Feeds(
        sorted({r.kernel.source_ref for r in recipes if r.kernel.source_kind == "debian" and r.kernel.version})
    )
    plans: list[tuple[Recipe, Pin]] = []
    current: list[Current] = []
    for recipe in recipes:
        path, k = recipe.path, recipe.kernel
        pinnable = k.version and (k.source_kind == "debian" or (k.source_kind == "url" and k.feed))
        if series and k.series not in series:
            continue
        pin = feeds.newest(recipe) if pinnable else None
        if pin is None:
            current.append(Current(path, k.series if pinnable else "", k.version))
        else:
            plans.append((recipe, pin))
    today = datetime.datetime.now(datetime.UTC).date().isoformat()
    by_series: dict[str, list[Bumped]] = {}
    # Every feed answered and every config brought forward before the first file changes:
    # a source that cannot be fetched or a config that cannot be upgraded leaves the folder as it was.
    forwarded = [_forward_config(recipe, pin.apply(recipe.kernel)) for recipe, pin in plans]
    for (recipe, pin), fwd in zip(plans, forwarded, strict=True):
        cache.atomic_write_text(recipe.path, edit_kernel_values(recipe.path.read_text(), pin.values))
        b = Bumped(recipe.path, recipe.kernel.series, recipe.kernel.version, pin.version, pin.values)
        if fwd is not None:
            cache.atomic_write_text(fwd.saved, fwd.config.read_text())
            b = replace(b, config=fwd.saved, questions=fwd.questions, summary=fwd.summary)
        by_series.setdefault(b.series, []).append(b)
    commits = []
    for s, items in sorted(by_series.items()):
        log = _write_changelog(folder, _changelog_entry(s, items, today))
        if top is not None:
            paths = [log] + [b.recipe for b in items] + [b.config for b in items if b.config is not None]
            commits.append(_commit(top, s, items, paths))
    bumped = tuple(b for _, items in sorted(by_series.items()) for b in items)
    return BumpResult(bumped, tuple(current), tuple(commits))
