"""The conda environment carries exactly the pins of requirements.lock; the key ones are pinned."""

from clipsafety import envfile


def test_environment_yml_has_the_lock_pins():
    assert envfile.env_pins() == envfile.lock_pins()


def test_key_packages_are_pinned_exactly():
    pins = dict(p.split("==", 1) for p in envfile.lock_pins())
    assert pins["torch"] == "2.14.1" and pins["torchvision"] == "0.29.1"
    assert pins["jupyter-book"].startswith("1.")  # 2.x cannot build offline
    for name in ("open_clip_torch", "timm", "pandas", "altair", "papermill", "jupytext",
                 "vl-convert-python", "imagenet-x", "django-static-mathjax"):
        assert name in pins, name


def _checkout(tmp_path, owner: str, stamp: str | None):
    """A checkout with the project's Makefile and pins, and a .venv whose python reports that
    its editable install points at ``owner`` (what a venv shared by link looks like)."""
    import shutil
    import stat
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    co = tmp_path / "clone"
    co.mkdir()
    for f in ("Makefile", "requirements.lock", "pyproject.toml"):
        shutil.copyfile(root / f, co / f)
    py = co / ".venv" / "bin" / "python"
    py.parent.mkdir(parents=True)
    py.write_text(f"#!/bin/sh\necho {owner}\n")
    py.chmod(py.stat().st_mode | stat.S_IEXEC)
    if stamp is not None:
        (co / ".venv" / ".installed").write_text(stamp + "\n")
    return co


def _make(co, *args):
    import subprocess

    return subprocess.run(["make", "--no-print-directory", "-C", str(co), *args, "PYTHON=false"],
                          capture_output=True, text=True, timeout=60)


def _env_hash(co) -> str:
    import hashlib

    data = (co / "requirements.lock").read_bytes() + (co / "pyproject.toml").read_bytes()
    return hashlib.sha256(data).hexdigest()[:16]


def test_make_never_reinstalls_into_a_venv_of_another_checkout(tmp_path):
    """A .venv shared by link whose stamp does not match this checkout's pins: make refuses,
    names the owner and the remedy, and installs nothing (it used to reinstall the editable
    package and re-point the shared venv at the new clone)."""
    co = _checkout(tmp_path, "/somewhere/else", stamp="0123456789abcdef")
    run = _make(co, "venv")
    assert run.returncode == 2, run.stdout + run.stderr
    assert "/somewhere/else" in run.stderr and "refusing to reinstall" in run.stderr
    assert "rm .venv" in run.stderr and "setting up" not in run.stdout


def test_a_venv_set_up_from_the_same_pins_is_current_whatever_the_file_times(tmp_path):
    """The stamp holds the hash of the pins' contents: a fresh clone (newer file times) of the
    same pins finds a shared venv current and runs nothing; its own lib comes first."""
    import os

    co = _checkout(tmp_path, "/somewhere/else", stamp=None)
    (co / ".venv" / ".installed").write_text(_env_hash(co) + "\n")
    os.utime(co / "requirements.lock")  # newer than the stamp, as in a fresh clone
    run = _make(co, "venv")
    assert run.returncode == 0 and run.stdout == "" and run.stderr == ""
    run = _make(co, "-pn", "venv")
    assert f"PYTHONPATH := {co.resolve()}/lib" in run.stdout
