"""Each page's scripts once, and no live-code (Thebe) script: the book executes nothing in the reader's browser.

Jupyter Book 1 sets up sphinx-thebe and sphinx-togglebutton in a way that adds their inline scripts twice; every page
then logged "Identifier 'THEBE_JS_URL' has already been declared" in the console, and named a CDN (unpkg.com) the
book never needs. This drops Thebe's scripts and any script that repeats one already on the page.
"""


def _clean(app, pagename, templatename, context, doctree):
    kept, seen = [], set()
    for script in context.get("script_files", []):
        body = getattr(script, "attributes", {}).get("body", "") if hasattr(script, "attributes") else ""
        name = str(getattr(script, "filename", script) or "")
        if "thebe" in name.lower() or "THEBE_JS_URL" in body:
            continue
        key = (name, body)
        if key in seen:
            continue
        seen.add(key)
        kept.append(script)
    context["script_files"] = kept


def setup(app):
    app.connect("html-page-context", _clean, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
