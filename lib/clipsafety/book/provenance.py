"""Provenance: how this copy of the book was made (versions, commit, hardware, each chapter's
run), written as the page ``book/chapters/provenance.md``."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from pathlib import Path

from clipsafety.book import toc
from clipsafety.book.cache import read_state
from clipsafety.book.toc import chapters


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=toc.ROOT, capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except Exception:
        return ""


def hardware() -> dict:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 2**20:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    gpu = "none"
    try:
        import torch

        if torch.cuda.is_available():
            gpu = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
    except Exception:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "memory": mem, "gpu": gpu,
            "platform": platform.platform(), "python": platform.python_version()}


PACKAGES = ["clipsafety", "torch", "torchvision", "open_clip_torch", "timm", "numpy", "pandas",
            "scipy", "scikit-learn", "altair", "papermill", "jupytext", "jupyter-book",
            "vl-convert-python", "imagenet-x", "safetensors", "pyarrow"]


def write_provenance() -> Path:
    """book/chapters/provenance.md: versions, commit, hardware, each chapter's run."""
    from importlib.metadata import PackageNotFoundError, version

    rows = []
    for ch in chapters():
        st = read_state(ch.name)
        if not st:
            rows.append(f"| {ch.name} | not executed | | |")
            continue
        changed = {k: v for k, v in st["params"].items() if st["defaults"].get(k) != v}
        params = ", ".join(f"`{k}={v!r}`" for k, v in changed.items()) or "defaults"
        rows.append(f"| {ch.name} | {params} | {st['seconds']:.1f} | {st['executed_at']} |")
    vers = []
    for pkg in PACKAGES:
        try:
            vers.append(f"| {pkg} | {version(pkg)} |")
        except PackageNotFoundError:
            vers.append(f"| {pkg} | not installed |")
    hw = hardware()
    commit = _git("rev-parse", "HEAD") or "unknown"
    dirty = " (with uncommitted changes)" if _git("status", "--porcelain", "--untracked-files=no") else ""
    from clipsafety import external

    mirror = external.mirror_dir()
    text = "\n".join([
        "# Provenance",
        "",
        "How this copy of the book was made. Every chapter was executed by papermill; the",
        "table lists the parameters that differ from the chapter's defaults.",
        "",
        f"- Built: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}",
        f"- Git commit: `{commit}`{dirty}",
        f"- Published upstream files: {'mirror ' + str(mirror) if mirror else 'download cache'}"
        " (each checked against its pinned sha256)",
        f"- Hardware: {hw['cpu']}, {hw['cores']} cores, {hw['memory']} memory, GPU: {hw['gpu']}",
        f"- Platform: {hw['platform']}, Python {hw['python']}",
        "",
        "## Chapters",
        "",
        "| chapter | parameters | seconds | executed at |",
        "|---|---|---|---|",
        *rows,
        "",
        "## Packages",
        "",
        f":::{{admonition}} The {len(vers)} packages the chapters ran with",
        ":class: dropdown",
        "",
        "| Package | Version |",
        "|---|---|",
        *vers,
        ":::",
        "",
    ])
    toc.CHAPTERS.mkdir(parents=True, exist_ok=True)
    out = toc.CHAPTERS / "provenance.md"
    out.write_text(text)
    return out


__all__ = ["PACKAGES", "hardware", "write_provenance"]
