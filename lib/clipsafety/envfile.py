"""Write environment.yml from requirements.lock, so conda users get the same pins.

``python -m clipsafety.envfile`` (``make lock`` refreshes requirements.lock from .venv first).
"""

from __future__ import annotations

from pathlib import Path

from clipsafety.files import REPO_ROOT as ROOT

HEADER = [
    "# conda environment for clipsafety: the same pins as requirements.lock (make book / make test).",
    "# Regenerate with: python -m clipsafety.envfile  (a test checks the two agree)",
    "name: clipsafety",
    "channels:",
    "  - conda-forge",
    "dependencies:",
    "  - python=3.11",
    "  - pip",
    "  - pip:",
]


def lock_pins(lock: Path = ROOT / "requirements.lock") -> list[str]:
    return [ln.strip() for ln in lock.read_text().splitlines()
            if ln.strip() and not ln.lstrip().startswith("#")]


def render(pins: list[str]) -> str:
    return "\n".join(HEADER + [f"      - {p}" for p in pins] + ["      - -e ."]) + "\n"


def env_pins(env: Path = ROOT / "environment.yml") -> list[str]:
    import yaml

    deps = yaml.safe_load(env.read_text())["dependencies"]
    pip = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    return [p for p in pip if p != "-e ."]


if __name__ == "__main__":
    (ROOT / "environment.yml").write_text(render(lock_pins()))
    print(f"wrote {ROOT / 'environment.yml'} ({len(lock_pins())} pins)")
