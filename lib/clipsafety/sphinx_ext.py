"""A small Sphinx extension for the book (``_config.yml``: ``sphinx.extra_extensions``).

- Every page loads each script once. sphinx-thebe adds its configuration script
  (``const THEBE_JS_URL = ...``) each time Sphinx reads the sources, and Jupyter Book reads
  them twice, so every page declared the constant twice and logged a SyntaxError.
- Every page gets the book's stylesheet (``book/_assets/clipsafety.css``, written by the
  runner): tables that scroll inside the text column, the findings matrix, the rerun box.
"""

from __future__ import annotations


def _dedupe_scripts(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, kept = set(), []
    for js in scripts:
        # the copies differ in how they say "no file" (None or ""): compare what the tag says
        key = (str(getattr(js, "filename", js) or ""),
               repr(sorted(getattr(js, "attributes", {}).items())))
        if key in seen:
            continue
        seen.add(key)
        kept.append(js)
    scripts[:] = kept


def setup(app):
    app.connect("html-page-context", _dedupe_scripts, priority=900)
    app.add_css_file("clipsafety.css")
    app.setup_extension("clipsafety.sphinx_claims")  # the methods page's list of claims
    return {"parallel_read_safe": True, "parallel_write_safe": True}
