"""The ``clipsafety-claims`` directive: the methods page's list of every claim the book judges,
with its test, rendered at build time from the studies' ``CLAIMS``
(:func:`clipsafety.contents.claims_markdown`), so the list is never typed twice.

In a MyST page::

    ```{clipsafety-claims}
    ```
"""

from __future__ import annotations

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective


class ClaimsDirective(SphinxDirective):
    """Parse :func:`clipsafety.contents.claims_markdown` as MyST in place."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        from clipsafety import contents

        text = contents.claims_markdown()
        node = nodes.container(classes=["clipsafety-claims"])
        self.state.nested_parse(StringList(text.splitlines(), source="clipsafety-claims"),
                                self.content_offset, node)
        return [node]


def setup(app):
    app.add_directive("clipsafety-claims", ClaimsDirective)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
