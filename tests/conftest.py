"""Test-session settings.

Tests marked ``full`` run a chapter at its default parameters over the whole zoo on every set
it reads (hundreds of predictions on a cold store, tens of minutes on this 2-core machine).
They are skipped unless ``CLIPSAFETY_FULL_TESTS=1`` (``make test-full``); the default suite
covers the same chapters on a handful of models (the site test) and at their defaults where
the cost is minutes (the equivalence test of the factor and shape-bias chapters).
"""

import os

# the synthetic world's bytes are those of numpy's AVX2 kernels (clipsafety.synth.world); set
# before numpy is imported when pytest runs outside make (which exports it)
os.environ.setdefault("NPY_DISABLE_CPU_FEATURES", "X86_V4 AVX512_ICL AVX512_SPR")

import pytest  # noqa: E402


def pytest_collection_modifyitems(config, items):
    if os.environ.get("CLIPSAFETY_FULL_TESTS") == "1":
        return
    skip = pytest.mark.skip(reason="long run (a chapter over the whole zoo, a real-model chapter path on the CPU, or the full-size dataset fingerprints); set CLIPSAFETY_FULL_TESTS=1 (make test-full)")
    for item in items:
        if "full" in item.keywords:
            item.add_marker(skip)


ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]

#: tests that load the committed zoo skip with a reason where it is absent
needs_zoo = pytest.mark.skipif(not (ROOT / "data" / "zoo" / "catalog.csv").is_file(),
                               reason="the zoo is not built (make zoo)")


def use_book_folders(monkeypatch, analyses, book_dir):
    """Point the chapter runner and the book's contents at ``analyses`` and ``book_dir``
    (a tiny book in a temporary folder): where chapters are found, the table of contents,
    executed notebooks and their state."""
    from clipsafety import contents
    from clipsafety.book import toc

    monkeypatch.setattr(contents, "ANALYSES", analyses)
    monkeypatch.setattr(contents, "BOOK", book_dir)
    monkeypatch.setattr(toc, "ANALYSES", analyses)
    monkeypatch.setattr(toc, "BOOK", book_dir)
    monkeypatch.setattr(toc, "CHAPTERS", book_dir / "chapters")
    monkeypatch.setattr(toc, "STATE", book_dir / "chapters" / ".state")


def expect_error(fn, exc, fragments):
    """Call ``fn``; it must raise ``exc`` whose message holds every fragment (any case)."""
    with pytest.raises(exc) as info:
        fn()
    msg = str(info.value).lower()
    for f in fragments:
        assert str(f).lower() in msg, (f, str(info.value))
    return info.value


@pytest.fixture
def pages(tmp_path, monkeypatch):
    """The real chapters, with their built pages in a tmp folder; execution is stubbed so a
    run that passes validation writes a new page (and is seen to have happened)."""
    from clipsafety import book
    from clipsafety.book import cache, executor, toc

    chapters = tmp_path / "chapters"
    chapters.mkdir()
    for ch in book.chapters():
        (chapters / f"{ch.name}.ipynb").write_text(f"the built page of {ch.name}")
    monkeypatch.setattr(toc, "CHAPTERS", chapters)
    monkeypatch.setattr(toc, "STATE", chapters / ".state")
    ran = []

    def fake_execute(ch, params, env, force=False, index=""):
        ran.append((ch.name, params))
        (chapters / f"{ch.name}.ipynb").write_text("a new page")
        return "executed", 0.0

    monkeypatch.setattr(executor, "execute", fake_execute)
    monkeypatch.setattr(executor, "build_site", lambda: 0)
    monkeypatch.setattr(cache, "environment_fingerprint", lambda: {})
    return chapters, ran
