"""The site: static assets served from the book (the vega bundle, a trimmed MathJax, the
stylesheet), the effective table of contents, and the strict Jupyter Book 1.x build.

The build is strict (``jupyter-book build -W -n --keep-going``): a Sphinx warning, such as a
broken internal link or a missing glued value, fails it after listing them all. Jupyter Book's
own execution is off (``_config.yml``); papermill executed the chapters.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from clipsafety.book import toc
from clipsafety.book.cache import chart_data_refs
from clipsafety.book.provenance import _git, hardware, write_provenance


def prune_chart_data() -> None:
    """Delete the chart data files no executed chapter loads any more."""
    folder = toc.STATIC / "data"
    if not folder.is_dir():
        return
    notebooks = list(toc.CHAPTERS.glob("*.ipynb"))
    used = set().union(*[chart_data_refs(nb) for nb in notebooks])
    for f in folder.glob("*.js"):
        if f.stem not in used:
            f.unlink()
    # the full tables behind folds (clipsafety.readable), linked as _static/data/<key>.csv
    tables = set().union(*[set(re.findall(r"_static/data/([0-9a-f]{20})\.csv",
                                          nb.read_text(errors="replace"))) for nb in notebooks])
    for f in folder.glob("*.csv"):  # a sortable table's CSV shares its data file's key
        if f.stem not in tables and f.stem not in used:
            f.unlink()



def write_static_assets() -> None:
    """Write the vega/vega-lite/vega-embed bundle and MathJax into book/_static (once)."""
    toc.STATIC.mkdir(parents=True, exist_ok=True)
    from clipsafety.plots import VL_VERSION

    bundle = toc.STATIC / "vega-bundle.js"
    stamp = toc.STATIC / "vega-bundle.version"
    import vl_convert as vlc

    version = f"vl{VL_VERSION}-vlc{getattr(vlc, '__version__', '')}-scoped"
    if not bundle.exists() or not stamp.exists() or stamp.read_text() != version:
        print("writing the vega JavaScript bundle (vl-convert-python)", flush=True)
        # wrapped in a function scope: the bundle's top-level names (e.g. `_`) would clash
        # with Sphinx's globals; it publishes vegaEmbed, vega and vegaLite on window.
        js = vlc.javascript_bundle(vl_version=VL_VERSION)
        bundle.write_text("(function(){\n" + js + "\n})();\n")
        stamp.write_text(version)
    shutil.copyfile(toc.LIB / "site.css", toc.STATIC / "clipsafety.css")  # sphinx_ext adds it
    write_mathjax(toc.STATIC / "mathjax")


#: the parts of MathJax 3 the pages use: the combined TeX-to-CHTML component (TeX input with
#: the AMS macros, the menu, CommonHTML output) and the fonts it loads. The rest of the
#: distribution (SVG output, MathML input, the speech rule engine, the other combined
#: components) is left out; the menu's accessibility extensions load on demand, and are
#: left out too.
MATHJAX_PARTS = ("tex-chtml.js", "output/chtml/fonts/woff-v2")


def write_mathjax(dest: Path) -> None:
    """Copy :data:`MATHJAX_PARTS` of MathJax (the django-static-mathjax wheel) into ``dest``;
    anything else found there (an older full copy) is removed."""
    import mathjax  # the django-static-mathjax distribution: MathJax 3 static files

    src = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    stamp = dest / ".parts"
    if stamp.exists() and stamp.read_text() == repr(MATHJAX_PARTS):
        return
    shutil.rmtree(dest, ignore_errors=True)
    for part in MATHJAX_PARTS:
        if (src / part).is_dir():
            shutil.copytree(src / part, dest / part)
        else:
            (dest / part).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src / part, dest / part)
    stamp.write_text(repr(MATHJAX_PARTS))


def write_build_record() -> Path:
    """``book/chapters/provenance.json``: the build's record the pages read (the Sphinx
    extension :mod:`clipsafety.sphinx_ext`: the chapters' run times, a banner on a chapter
    built with non-default parameters): commit, time, hardware, and each executed chapter's
    seconds, time and parameters that differ from its defaults."""
    import json

    from clipsafety.book.cache import read_state
    from clipsafety.book.toc import chapters

    rows = []
    for ch in chapters():
        st = read_state(ch.name)
        if not st:
            continue
        changed = {k: v for k, v in st.get("params", {}).items()
                   if st.get("defaults", {}).get(k) != v}
        rows.append({"name": ch.name, "seconds": st.get("seconds"),
                     "executed_at": st.get("executed_at"), "changed": changed})
    record = {"commit": _git("rev-parse", "HEAD") or "unknown",
              "built": time.strftime("%Y-%m-%d %H:%M %Z"), "hardware": hardware(),
              "chapters": rows}
    toc.CHAPTERS.mkdir(parents=True, exist_ok=True)
    out = toc.CHAPTERS / "provenance.json"
    out.write_text(json.dumps(record, indent=1, default=str))
    return out


#: the repository url of a fresh clone (_config.yml): launch buttons made from it lead nowhere
PLACEHOLDER_REPO = "your-org/clipsafety"
#: the Pages workflow (it publishes the site and, for the launch buttons, the executed notebooks)
PAGES_WORKFLOW = ".github/workflows/pages.yml"
_LAUNCH = re.compile(r'href="(https://(?:mybinder\.org/v2/gh|colab\.research\.google\.com/github)'
                     r'/[^"]+)"')


def repository() -> dict:
    """``_config.yml``'s ``repository`` (url, path_to_book, branch): the one place the
    repository's address is set."""
    cfg = yaml.safe_load((toc.ROOT / "_config.yml").read_text()) or {}
    return dict(cfg.get("repository") or {})


def launch_targets(html: str) -> list[tuple[str, str, str]]:
    """The launch buttons of a built page: (url, branch, path in the repository) of each
    Binder and Colab link."""
    out = []
    for url in _LAUNCH.findall(html):
        url = url.replace("&amp;", "&")
        m = (re.search(r"/v2/gh/[^/]+/[^/]+/([^?]+)\?urlpath=(?:tree|lab/tree)/([^&]+)", url)
             or re.search(r"/github/[^/]+/[^/]+/blob/([^/]+)/(.+)$", url))
        if m:
            out.append((url, m.group(1), m.group(2)))
    return out


def publish_problems(site: Path | None = None) -> list[str]:
    """Why the book must not be published as it is: the repository url is still the
    placeholder (or not a GitHub address, which the launch buttons need); the Pages workflow
    does not publish the executed notebooks on the branch the launch buttons open; and, for a
    built ``site``, a launch link whose target would not exist in what the workflow
    publishes (the tracked files plus the executed notebooks ``book/chapters/*.ipynb``)."""
    problems = []
    repo = repository()
    url = str(repo.get("url") or "")
    if not url or PLACEHOLDER_REPO in url:
        problems.append(f"_config.yml: repository.url is {url or 'not set'!r}, the placeholder; "
                        "set it to the published repository (https://github.com/<owner>/<name>) "
                        "before publishing, or the launch and repository buttons lead nowhere")
    elif not re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+/?", url):
        problems.append(f"_config.yml: repository.url {url!r} is not a GitHub repository's "
                        "address (https://github.com/<owner>/<name>), which Binder and Colab "
                        "open notebooks from")
    branch = str(repo.get("branch") or "main")
    workflow = toc.ROOT / PAGES_WORKFLOW
    text = workflow.read_text() if workflow.is_file() else ""
    pushes = ("git add -f book/chapters/*.ipynb" in text
              and "clipsafety.book publish-check --branch" in text)
    if not pushes:
        problems.append(f"{PAGES_WORKFLOW} does not push the executed notebooks "
                        "(book/chapters/*.ipynb) to the branch of _config.yml's "
                        f"repository.branch ({branch!r}), which the launch buttons open")
    if site is not None:
        book_path = str(repo.get("path_to_book") or "book").strip("/")
        tracked = set(_git("ls-files").splitlines())
        published = tracked | ({f"{book_path}/chapters/{p.name}"
                                for p in toc.CHAPTERS.glob("*.ipynb")} if pushes else set())
        for page in sorted(Path(site).rglob("*.html")):
            if "_static" in page.parts:
                continue
            for link, to_branch, path in launch_targets(page.read_text(errors="replace")):
                if to_branch != branch:
                    problems.append(f"{page.relative_to(site)}: {link} opens the branch "
                                    f"{to_branch!r}, not {branch!r} where the notebooks are")
                elif path not in published:
                    problems.append(f"{page.relative_to(site)}: {link} opens {path}, which the "
                                    "Pages workflow does not publish")
    return problems


def effective_toc() -> Path:
    """book/_toc.yml without the entries whose page does not exist (with a warning each)."""
    tree = yaml.safe_load((toc.BOOK / "_toc.yml").read_text())

    def exists(f: str) -> bool:
        return any((toc.BOOK / f"{f}{ext}").exists() for ext in ("", ".md", ".ipynb", ".rst"))

    def prune(node):
        if isinstance(node, list):
            kept = []
            for item in node:
                if isinstance(item, dict) and "file" in item and not exists(item["file"]):
                    print(f"warning: {item['file']} is in book/_toc.yml but was not built; "
                          "left out of the site", flush=True)
                    continue
                item = prune(item)
                if isinstance(item, dict) and "chapters" in item and not item["chapters"]:
                    continue  # a part whose chapters were all left out
                kept.append(item)
            return kept
        if isinstance(node, dict):
            return {k: prune(v) for k, v in node.items()}
        return node

    root = tree.get("root")
    if root and not exists(root):
        # the landing page (the findings) was not built: the first page that was leads
        first = _first_file(prune(tree.get("parts", tree.get("chapters", []))))
        print(f"warning: {root} (the landing page) was not built; {first} opens the site",
              flush=True)
        tree = _drop_file(tree, first)
        tree["root"] = first
    out = toc.BOOK / "_build" / "_toc.effective.yml"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(prune(tree), sort_keys=False))
    return out


def _first_file(node):
    if isinstance(node, dict):
        if "file" in node:
            return node["file"]
        node = list(node.values())
    if isinstance(node, list):
        for item in node:
            found = _first_file(item)
            if found:
                return found
    return None


def _drop_file(node, name: str):
    if isinstance(node, list):
        return [_drop_file(x, name) for x in node
                if not (isinstance(x, dict) and x.get("file") == name)]
    if isinstance(node, dict):
        return {k: _drop_file(v, name) for k, v in node.items()}
    return node


def build_site() -> int:
    write_static_assets()
    prune_chart_data()
    for stale in ("mathjax", "data"):  # Sphinx adds static files, never removes them
        shutil.rmtree(toc.BOOK / "_build" / "html" / "_static" / stale, ignore_errors=True)
    write_provenance()
    write_build_record()
    print("building the site with Jupyter Book (execution off: papermill executed the chapters)",
          flush=True)
    t0 = time.time()
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb) if jb.exists() else "jupyter-book", "build", str(toc.BOOK),
           "--config", str(toc.ROOT / "_config.yml"), "--toc", str(effective_toc()),
           "--path-output", str(toc.BOOK), "--quiet",
           # strict: any Sphinx warning (a broken internal link or reference, a bad
           # directive, a missing glue key) fails the build, after reporting them all
           "-W", "-n", "--keep-going"]
    rc = subprocess.run(cmd, cwd=toc.ROOT).returncode
    print(f"site built in {time.time() - t0:.1f} s: {toc.BOOK / '_build' / 'html' / 'index.html'}"
          if rc == 0 else f"jupyter-book build failed (exit {rc})", flush=True)
    return rc


__all__ = ["MATHJAX_PARTS", "build_site", "effective_toc", "prune_chart_data",
           "launch_targets", "publish_problems", "repository", "write_build_record",
           "write_mathjax", "write_static_assets"]
