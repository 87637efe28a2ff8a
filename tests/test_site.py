"""The built site, as a reader's browser shows it.

Builds the book the way ``make book`` does (strict: any Sphinx warning fails it; cached
chapters are not re-executed), then opens every page in headless Chromium at a 1280 px
viewport with networking off (``tests/browser.py``, the DevTools protocol) and checks that it
is not blank, that every chart rendered and fits its container, and that the console logged
no error. Screenshots of the landing page and of every chapter are kept under
``$CLIPSAFETY_SCREENSHOTS`` (default ``book/_build/screenshots``). Page weights are read from
the built files.
"""

import os
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from browser import Browser, chromium
from clipsafety import book

pytestmark = [pytest.mark.book, pytest.mark.browser, pytest.mark.slow]

HTML = book.BOOK / "_build" / "html"
SCREENSHOTS = Path(os.environ.get("CLIPSAFETY_SCREENSHOTS") or book.BOOK / "_build" / "screenshots")
#: the limits of the issue "the book as a product": a page, and the whole site
PAGE_LIMIT = 1_500_000
SITE_LIMIT = 30_000_000
REMOTE = re.compile(
    r"<(?:script|img|iframe|source|audio|video)\b[^>]*\bsrc=[\"'](?:https?:)?//"
    r"|<link\b[^>]*\bhref=[\"'](?:https?:)?//[^\"']*[\"'][^>]*>",
    re.I,
)
CSS_REMOTE = re.compile(r"(?:@import\s+(?:url\()?|url\()\s*[\"']?(?:https?:)?//", re.I)


#: the site test checks how pages render, not what the zoo finds: it builds the book on a
#: handful of zoo models spanning the groups (a cold store costs minutes, not the half hour of
#: every model on every set), which the chapters' own tests cover at their defaults
SITE_MODELS = ["zoo:sup-resnet-labelled-10k", "zoo:sup-convnext-labelled-30k",
               "zoo:sup-vit-labelled-100k", "zoo:sup-resnet-laion-100k",
               "zoo:clip-resnet-wit-100k", "zoo:clip-convnext-wit-30k", "zoo:clip-resnet-laion-100k",
               "zoo:clip-vit-laion-30k", "zoo:ft-resnet-wit-100k", "zoo:ft2-resnet-wit-100k"]


@pytest.fixture(scope="module")
def site():
    from clipsafety.models import is_known_id

    models = [m for m in SITE_MODELS if is_known_id(m)] or "zoo"
    # the fine-tuning and curation chapters train live: a tiny budget here (their own tests
    # cover them; their defaults are minutes each)
    rc = book.build(overrides={"models": models, "n_boot": 200, "budget": 512, "n_eval": 100,
                               "pool_size": 1000, "sizes": [100, 200], "n_subsets": 4},
                    jobs=2)
    assert rc == 0, "make book failed: see the output above"
    return HTML


def chapter_pages(site: Path) -> list[Path]:
    return [site / "chapters" / f"{c.name}.html" for c in book.chapters()]


def test_every_chapter_page_exists_with_provenance(site):
    for page in chapter_pages(site):
        assert page.exists(), f"{page.name} was not built"
    prov = (site / "chapters" / "provenance.html").read_text()
    for word in ("Git commit", "torch", "open_clip_torch", "Hardware", "landscape"):
        assert word in prov


def pages(site: Path) -> list[Path]:
    """Every page of the site (not the redirecting index, not the theme's files)."""
    return sorted(p for p in site.rglob("*.html")
                  if not {"_static", "_sources"} & set(p.relative_to(site).parts)
                  and p.name != "index.html")


@pytest.fixture(scope="module")
def browser():
    binary = chromium()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run installs Debian's chromium")
        pytest.skip("chromium not installed (apt-get install chromium)")
    b = Browser(binary, width=1280)
    yield b
    b.close()


def test_every_page_renders_fits_and_logs_no_error(site, browser):
    shots = {site / "chapters" / f"{c}.html" for c in book.toc_chapters()}
    problems, charts = [], 0
    for page in pages(site):
        name = str(page.relative_to(site))
        shot = SCREENSHOTS / name.replace("/", "_").replace(".html", ".png") if page in shots else None
        r = browser.open(page, screenshot=shot)
        html = page.read_text()
        if r.text < 200 and page.name not in ("search.html", "genindex.html"):  # Sphinx's own
            problems.append(f"{name}: blank ({r.text} characters of text)")
        expected = html.count('class="clipsafety-chart"')
        if r.rendered != expected or r.chart_errors:
            problems.append(f"{name}: {r.rendered} of {expected} charts rendered {r.chart_errors}")
        if r.wide:
            problems.append(f"{name}: charts wider than their container at 1280 px: {r.wide}")
        if r.console:
            problems.append(f"{name}: console errors: {r.console[:3]}")
        if r.blocked:
            problems.append(f"{name}: asked for remote resources: {r.blocked[:3]}")
        charts += r.rendered
    assert not problems, "\n".join(problems)
    assert charts >= 10
    landing = SCREENSHOTS / f"chapters_{book.toc_chapters()[0]}.png"
    assert landing.exists() and landing.stat().st_size > 10_000


def test_a_chapter_without_charts_shows_a_note(site):
    for page in chapter_pages(site):
        html = page.read_text()
        if 'class="clipsafety-chart"' not in html and page.stem not in ("findings",):
            # without mirror or network a chapter made only of published data shows a note
            # in place of its panels (clipsafety.plots.unavailable_note), never a broken chart
            assert "not available here" in html, f"{page.name}: no chart and no note"


def _data_files(html: str) -> list[str]:
    return re.findall(r'src="\.\./_static/data/([0-9a-f]+\.js)"', html)


_ASSET = re.compile(r"""<script\b[^>]*\bsrc=["']([^"']+)["']|<link\b(?=[^>]*\brel=["']?stylesheet)"""
                    r"""[^>]*\bhref=["']([^"']+)["']""", re.I)
_FONT = re.compile(r"@font-face\s*\{[^}]*?url\(\s*[\"']?([^\"')]+\.woff2)", re.I)


def first_load(page: Path, site: Path) -> dict[str, int]:
    """What a browser fetches to show ``page`` with an empty cache: the page, every script and
    stylesheet it links (the theme's shared ones included), the chart data files, and the
    woff2 fonts those stylesheets declare (an upper bound: a browser fetches only the faces
    in use). Path (relative to the site) -> bytes."""
    out: dict[str, int] = {}

    def add(path: Path) -> bool:
        path = path.resolve()
        if not path.is_file():
            return False
        key = str(path.relative_to(site.resolve()))
        if key in out:
            return False
        out[key] = path.stat().st_size
        return True

    add(page)
    for script, css in _ASSET.findall(page.read_text(errors="replace")):
        url = unquote(urlsplit(script or css).path)
        if urlsplit(script or css).scheme or not url:
            continue
        target = page.parent / url
        if add(target) and css:
            for font in _FONT.findall(target.read_text(errors="replace")):
                add(target.parent / unquote(urlsplit(font).path))
    return out


def transferred(path: Path) -> int:
    """Bytes a browser receives for ``path`` from GitHub Pages, which serves text (HTML,
    JavaScript, CSS, JSON, SVG) gzip-compressed; fonts and images as they are."""
    import gzip

    if path.suffix in (".woff2", ".woff", ".png", ".jpg", ".gif", ".webp"):
        return path.stat().st_size
    return len(gzip.compress(path.read_bytes(), 6))


def test_pages_and_site_stay_light(site):
    """Every page's first load (the theme's shared scripts, stylesheets and fonts counted)
    stays under PAGE_LIMIT as transferred; a page without charts stays under it even
    uncompressed (the vega bundle, 0.9 MB, is linked only where a chart is); the site stays
    under SITE_LIMIT."""
    heavy = []
    for page in pages(site):
        files = first_load(page, site)
        raw = sum(files.values())
        sent = sum(transferred(site / f) for f in files)
        charts = 'class="clipsafety-chart"' in page.read_text()
        if sent > PAGE_LIMIT or (not charts and raw > PAGE_LIMIT):
            top = sorted(files.items(), key=lambda kv: -kv[1])[:4]
            heavy.append(f"{page.relative_to(site)}: {sent / 1e6:.2f} MB transferred, "
                         f"{raw / 1e6:.2f} MB uncompressed on a first load (largest: "
                         f"{', '.join(f'{k} {v / 1e6:.2f} MB' for k, v in top)})")
    assert not heavy, f"pages over {PAGE_LIMIT / 1e6} MB:\n" + "\n".join(heavy)
    total = sum(p.stat().st_size for p in site.rglob("*") if p.is_file())
    assert total <= SITE_LIMIT, f"the site weighs {total / 1e6:.1f} MB (limit {SITE_LIMIT / 1e6} MB)"
    # the theme's 1.5 MB icon script is a stub: its stylesheet draws the same icons
    assert (site / "_static" / "scripts" / "fontawesome.js").stat().st_size < 1000


LINK = re.compile(r"""<(?:a|link|script|img)\b[^>]*?\b(?:href|src)=["']([^"'#?][^"']*)["']""", re.I)


def test_internal_links_resolve(site):
    broken = []
    for page in [*pages(site), site / "index.html"]:
        for url in LINK.findall(page.read_text()):
            parts = urlsplit(url)
            if parts.scheme or url.startswith(("//", "mailto:", "data:", "javascript:")):
                continue
            target = (page.parent / unquote(parts.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                broken.append(f"{page.relative_to(site)} -> {url}")
    assert not broken, "broken internal links:\n" + "\n".join(sorted(set(broken))[:30])


def test_nothing_is_loaded_from_outside_the_site(site):
    offenders = []
    for page in site.rglob("*.html"):
        for m in REMOTE.finditer(page.read_text(errors="replace")):
            offenders.append(f"{page.relative_to(site)}: {m.group(0)[:120]}")
    for css in site.rglob("*.css"):
        for m in CSS_REMOTE.finditer(css.read_text(errors="replace")):
            offenders.append(f"{css.relative_to(site)}: {m.group(0)[:120]}")
    assert not offenders, "remote resources:\n" + "\n".join(offenders[:20])
    assert (site / "_static" / "vega-bundle.js").stat().st_size > 100_000
    assert (site / "_static" / "mathjax" / "tex-chtml.js").exists()


def test_landing_page_opens_with_every_recorded_claim(site):
    """The landing page is the findings page; it shows each claim the chapters recorded, with
    its verdict, from their outputs (nothing typed)."""
    from clipsafety.studies import findings

    index = (site / "index.html").read_text()
    assert "chapters/findings.html" in index  # the site opens on the findings
    html = (site / "chapters" / "findings.html").read_text()
    table = findings.findings_table(findings.read_outputs())
    assert len(table) and table["chapter"].nunique() >= 5
    import html as html_lib

    text = html_lib.unescape(html)
    for r in table.drop_duplicates(["chapter", "claim_id"]).itertuples():
        assert r.claim in text, f"findings page misses the claim {r.claim!r}"
    assert "In short." in text and "Reading guide" in text and "Try it" in text
    # one badge per claim and kind of evidence shown (the real-run column is folded into a
    # note when no real run exists), counted in the claim's home chapter only
    kinds = findings.per_kind(table)
    shown = kinds if findings._has_real_run(kinds) else kinds[kinds["evidence_kind"] != "real models on real data"]
    assert html.count('class="clipsafety-verdict"') == len(shown)
    assert html.count('class="clipsafety-chart"') >= 1  # the overview figure
    for ch in book.toc_chapters():
        if ch != "findings":
            assert f'href="{ch}.html' in html, f"findings page does not link {ch}"


def test_every_chapter_opens_with_its_summary_and_ends_with_try_it(site):
    for page in chapter_pages(site):
        if page.stem == "findings":
            continue
        html = page.read_text()
        summary = html.find("What this chapter found") if "What this chapter found" in html else \
            html.find("What this appendix shows")
        assert summary > 0, f"{page.name}: no summary"
        first_section = html.find("<h2>", html.find("<article"))
        assert 0 < summary < first_section, f"{page.name}: the summary is not at the top"
        assert html.rfind("Try it") > html.rfind('class="clipsafety-chart"'), page.name
        assert "Rerun this chapter" in html and f"make chapter NAME={page.stem}" in html


@pytest.mark.full
def test_tables_and_charts_read_as_prose(site):
    """No page shows a reader NaN, an index column or variable names (snake_case) in its
    tables' headers, chart titles, axes, legends or panel labels (clipsafety.readable).
    Fails on the chapters that still print raw DataFrames: it runs in ``make test-full``."""
    from clipsafety import readable

    found = readable.audit_site(site)
    report = [f"{page}: {p}" for page, problems in found.items() for p in problems]
    assert not report, f"{len(report)} things a reader should not meet, on {len(found)} " \
        "pages:\n" + "\n".join(report)


def test_launch_buttons_open_published_notebooks(site):
    """Every Binder and Colab link opens a file on the branch the Pages workflow pushes the
    executed notebooks to (repository.branch), a file that is published there."""
    from clipsafety.book import site as book_site

    links = {p.stem: book_site.launch_targets(p.read_text()) for p in chapter_pages(site)}
    assert all(len(v) == 2 for v in links.values()), links  # Binder and Colab on each chapter
    problems = [p for p in book_site.publish_problems(site) if "placeholder" not in p]
    assert not problems, "\n".join(problems)
    branch = book_site.repository()["branch"]
    for name, targets in links.items():
        assert {(b, path) for _, b, path in targets} == {(branch, f"book/chapters/{name}.ipynb")}
        assert (book.CHAPTERS / f"{name}.ipynb").exists()


def test_publishing_refuses_the_placeholder_url(tmp_path, monkeypatch):
    from clipsafety.book import site as book_site
    from clipsafety.book import toc

    root = tmp_path / "repo"
    (root / ".github" / "workflows").mkdir(parents=True)
    workflow = (toc.ROOT / book_site.PAGES_WORKFLOW).read_text()
    (root / book_site.PAGES_WORKFLOW).write_text(workflow)
    config = (toc.ROOT / "_config.yml").read_text()
    monkeypatch.setattr(toc, "ROOT", root)
    (root / "_config.yml").write_text(config)  # the placeholder of a fresh clone
    problems = book_site.publish_problems()
    assert len(problems) == 1 and "placeholder" in problems[0] and "repository.url" in problems[0]
    (root / "_config.yml").write_text(re.sub(r"url: \S+", "url: https://github.com/tu/clipsafety",
                                             config))
    assert book_site.publish_problems() == []
    (root / "_config.yml").write_text(re.sub(r"url: \S+", "url: https://gitlab.com/tu/x", config))
    assert "not a GitHub repository" in " ".join(book_site.publish_problems())
    # a workflow that does not push the notebooks: the launch buttons would open nothing
    (root / "_config.yml").write_text(re.sub(r"url: \S+", "url: https://github.com/tu/clipsafety",
                                             config))
    (root / book_site.PAGES_WORKFLOW).write_text(workflow.replace("git add -f", "git add"))
    assert "does not push the executed notebooks" in " ".join(book_site.publish_problems())


def test_pages_about_the_book_are_computed(site):
    """The intro lists every page of the table of contents that was built and the run time
    of each chapter in this build (from the build's record); code folds once per section."""
    import json

    from clipsafety import contents

    intro = (site / "intro.html").read_text()
    for _, file in contents.toc_entries()[1:]:
        if file != "intro" and (site / f"{file}.html").exists():
            assert f'href="{file}.html' in intro, f"the intro does not list {file}"
    record = json.loads((book.CHAPTERS / "provenance.json").read_text())
    assert record["chapters"], "no chapter in the build's record"
    for c in record["chapters"]:
        seconds = c["seconds"]
        shown = f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"
        assert shown in intro, (c["name"], shown)
    for page in chapter_pages(site):
        html = page.read_text()
        assert "Show code cell source" not in html, f"{page.name}: a code cell folds alone"
        sections = html.count('<section ')
        assert html.count("clipsafety-section-code\"") <= sections, page.name
        entry = next(c for c in record["chapters"] if c["name"] == page.stem)
        assert ("Built with non-default parameters" in html) == bool(entry["changed"]), page.name


def test_code_folds_once_per_section():
    """The hidden code cells of a section move into one fold at the end of the section's own
    text (before its subsections); their outputs stay; a cell with no output left goes."""
    from clipsafety.sphinx_ext import fold_section_code
    from docutils import nodes
    from docutils.utils import new_document
    from myst_nb.sphinx_ import HideCodeCellNode

    def cell(i, output=True, hide="input"):
        c = nodes.container(nb_element="cell_code", hide_mode=hide)
        c += nodes.container("", nodes.literal_block(text=f"code {i}"), nb_element="cell_code_source")
        if output:
            c += nodes.container("", nodes.paragraph(text=f"output {i}"), nb_element="cell_code_output")
        return c

    doc = new_document("test")
    top = nodes.section()
    top += nodes.title(text="Chapter")
    top += [cell(1, output=False), nodes.paragraph(text="prose"), cell(2), cell(3, hide="")]
    sub = nodes.section()
    sub += nodes.title(text="Part")
    sub += [cell(4), cell(5)]
    top += sub
    doc += top
    fold_section_code(doc)
    folds = list(doc.findall(HideCodeCellNode))
    assert len(folds) == 2
    assert [b.astext() for b in folds[0].findall(nodes.literal_block)] == ["code 1", "code 2"]
    assert [b.astext() for b in folds[1].findall(nodes.literal_block)] == ["code 4", "code 5"]
    assert folds[0].parent is top and top.index(folds[0]) == top.index(sub) - 1
    assert folds[1].parent is sub and sub.children[-1] is folds[1]
    # outputs stay in place; the cell without output is gone; a visible cell is left alone
    assert [p.astext() for p in top.children if isinstance(p, nodes.paragraph)] == ["prose"]
    texts = [c.astext() for c in top.children if isinstance(c, nodes.container)
             and c.get("nb_element") == "cell_code"]
    assert texts == ["output 2", "code 3\n\noutput 3"]
    assert "Show the code of this section (2 cells)" == folds[0]["prompt_show"]
