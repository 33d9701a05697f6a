"""mkdocs hook: the docstrings cross-reference in Sphinx's style (:class:`~a.b.C`), which Markdown shows verbatim;
on the API pages, show such a reference as plain code, with only the last name after a ~ as Sphinx does."""

import re

_ROLE = re.compile(r":(?:class|meth|func|attr|mod|exc|data|obj):<code>(~?)([\w.]+)</code>")
_LITERAL_INTRO = re.compile(r"::</p>")


def _shown(match: re.Match) -> str:
    tilde, name = match.groups()
    return f"<code>{name.rsplit('.', 1)[-1] if tilde else name}</code>"


def on_page_content(html: str, page, config, files) -> str:
    if not page.file.src_uri.startswith("api/"):
        return html
    return _LITERAL_INTRO.sub(":</p>", _ROLE.sub(_shown, html))
