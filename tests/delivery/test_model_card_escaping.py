"""MODEL_CARD.md shows every recorded string as itself: rendered by a Markdown renderer that allows HTML, a class
named ``<img src=x onerror=alert(1)>`` is text, a ``|`` does not split the metrics table, a newline does not end it."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from medtransfer.model.card import markdown_text, model_card

NAMES = ["<img src=x onerror=alert(1)>", "a|b", "back\\slash|", "*bold* _it_ `code` ~~del~~", "[link](javascript:alert(1))",
         "two\nlines", "&amp; &lt;", "<script>alert(1)</script>", "日本 🩻 é", "# not a heading", "[/x]blob"]


class Cells(HTMLParser):
    """The rendered page's tags and the text of each table row's cells."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.tags, self.rows, self.text, self._cell = [], [], [], None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.rows[-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)


def render(markdown: str) -> Cells:
    markdown_it = pytest.importorskip("markdown_it")
    return Cells(markdown_it.MarkdownIt("commonmark", {"html": True}).enable("table").render(markdown))


@pytest.mark.parametrize("name", NAMES)
def test_a_string_renders_as_itself_in_a_table_cell_and_in_a_list(name):
    page = render(f"| metric | value |\n|---|---|\n| {markdown_text(name)} | 1 |\n\n- class: {markdown_text(name)}\n")
    assert [t for t, _ in page.tags] == ["table", "thead", "tr", "th", "th", "tbody", "tr", "td", "td", "ul", "li"]
    assert page.rows[1] == [name, "1"]
    assert f"class: {name}" in "".join(page.text)


def test_every_user_string_of_a_card_is_escaped():
    evil = "<img src=x onerror=alert(1)>"
    spec = {"task": "classification", "backbone": f"net{evil}", "strategy": "linear", "input_size": 32, "channels": 1,
            "class_names": [f"{evil}|x", "a\nb"], "weights": f"/w/{evil}.safetensors", "frozen_groups": 6,
            "num_groups": 7}
    data = {"name": f"data{evil}", "modality": f"x-ray{evil}", "counts": {"train": 4, "train_used": 4, "val": 2, "test": 2},
            "per_class": {"test": {f"{evil}|x": 1, "a\nb": 1}}}
    test = {"auc": {"value": 0.5, "ci_low": 0.25, "ci_high": 0.75},
            f"ap50_{evil}|x": {"value": 0.5, "ci_low": 0.25, "ci_high": 0.75}}
    card = model_card(spec, test, data, {"torch": f"2{evil}"}, choice=f"because {evil}", metric="auc")
    assert "<img" not in card
    page = render(card)
    assert not [t for t, a in page.tags if t in ("img", "script") or any(k.startswith("on") for k in a)]
    text = "".join(page.text)
    for shown in (f"net{evil}", f'"{evil}|x", "a\nb"', f"data{evil}", f"x-ray{evil}", f"/w/{evil}.safetensors",
                  f"because {evil}", f"torch 2{evil}", f'test: "{evil}|x" 1, "a\nb" 1'):
        assert shown in text, shown
    metrics = [r for r in page.rows if len(r) == 2][1:]
    assert metrics == [["auc (study metric)", "0.500 (95 % CI 0.250–0.750)"],
                       [f"ap50 {evil}|x", "0.500 (95 % CI 0.250–0.750)"]]
