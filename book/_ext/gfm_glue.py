"""Render glued Markdown as GitHub-flavoured Markdown, so that glued tables are tables.

myst-nb's `{glue:md}` directive parses its text as CommonMark unless the
directive says `:format: gfm`; the chapters glue their result tables as
Markdown, so the book's default is GFM instead. A directive that names a
format keeps it.
"""


def setup(app):
    from myst_nb.ext.glue.directives import PasteMarkdownDirective

    run = PasteMarkdownDirective.run

    def run_with_gfm(self):
        self.options.setdefault("format", "gfm")
        return run(self)

    if not getattr(run, "l2l_gfm", False):
        run_with_gfm.l2l_gfm = True
        PasteMarkdownDirective.run = run_with_gfm
    return {"parallel_read_safe": True, "parallel_write_safe": True}
