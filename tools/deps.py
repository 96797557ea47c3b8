"""The lock file (constraints.txt) against pyproject.toml: check that it pins every dependency, and write it.

    python tools/deps.py check                      # exit 2, naming the package, when the lock does not fit
    python tools/deps.py freeze VENV/bin/python     # print a new lock from a resolved environment
    python tools/deps.py no-deps                    # packages installed with --no-deps (pyproject's
                                                    # [tool.assistant] no-deps), for the Makefile

`make setup` installs every package with `pip install -c constraints.txt`, so a fresh clone gets the
versions that were tested, not whatever was released this morning. `make lock` resolves the newest
allowed versions in a throw-away environment, runs the fast tests there and only then writes the file.
Standard library only (and pip's vendored `packaging` when `packaging` itself is not installed yet):
`check` runs before anything is installed.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "constraints.txt"
PROJECT = "assistant"

try:
    from packaging.requirements import Requirement
    from packaging.version import Version
except ImportError:  # a bare venv: pip carries its own copy
    from pip._vendor.packaging.requirements import Requirement  # type: ignore[no-redef]
    from pip._vendor.packaging.version import Version  # type: ignore[no-redef]


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pyproject(root: Path = ROOT) -> dict:
    return tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))


def no_deps(root: Path = ROOT) -> list[str]:
    return list(pyproject(root).get("tool", {}).get("assistant", {}).get("no-deps", []))


def requirements(root: Path = ROOT) -> list[Requirement]:
    """Every requirement the project declares: dependencies, all extras, and the --no-deps packages."""
    project = pyproject(root)["project"]
    texts = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        texts += extra
    return [Requirement(t) for t in [*texts, *no_deps(root)]]


def read_lock(path: Path = LOCK) -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[canonical(name)] = version.strip()
    return pins


def check(root: Path = ROOT) -> int:
    lock = root / LOCK.name
    if not lock.is_file():
        print(f"{LOCK.name} is missing: run `make lock` to resolve, test and write it", file=sys.stderr)
        return 2
    pins = read_lock(lock)
    problems = []
    for req in requirements(root):
        pin = pins.get(canonical(req.name))
        if pin is None:
            problems.append(f"'{req.name}' ({req}) is in pyproject.toml but not pinned in {LOCK.name}")
        elif req.specifier and not req.specifier.contains(Version(pin).public, prereleases=True):
            problems.append(f"{LOCK.name} pins {req.name}=={pin}, which pyproject.toml's '{req}' does not allow")
    for problem in problems:
        print(f"{problem}: run `make lock` to resolve and test a new lock", file=sys.stderr)
    return 2 if problems else 0


def freeze(python: str) -> int:
    out = subprocess.run(
        [python, "-m", "pip", "freeze", "--all", "--exclude-editable"], check=True, capture_output=True, text=True
    ).stdout
    pins = []
    for line in out.splitlines():
        name, sep, version = line.partition("==")
        if not sep or canonical(name) in (PROJECT, "setuptools", "wheel"):
            continue  # editable or URL installs, the project itself, build tools pip brings along
        # A local label (torch 2.13.0+cpu) is where the wheel came from, not its version: the same pin
        # must install a CUDA build on a GPU machine.
        pins.append(f"{name}=={version.split('+', 1)[0]}")
    version = subprocess.run([python, "-c", "import sys; print(sys.version.split()[0])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    print("# The lock: exact versions of every package `make setup` and CI install (pip install -c).")
    print(f"# Written by `make lock` on {date.today()} (Python {version}) after the fast tests passed in")
    print("# the resolved environment. Do not edit by hand: change pyproject.toml, then run `make lock`.")
    print("\n".join(sorted(pins, key=str.lower)))
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["check"]:
        return check()
    if argv[:1] == ["freeze"] and len(argv) == 2:
        return freeze(argv[1])
    if argv[:1] == ["no-deps"]:
        print(" ".join(no_deps()))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
