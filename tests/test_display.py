"""Tables: aligned text in a terminal, HTML in a notebook."""

import pytest

from mlm_lessons.teaching.display import Table


def test_text_and_html():
    t = Table([{"name": "a", "count": 1234, "share": 0.5}, {"name": "bb", "count": 5, "share": 0.25}], digits=2)
    assert str(t).splitlines() == [
        "name  count  share",
        "----  -----  -----",
        "a     1,234   0.50",
        "bb        5   0.25",
    ]
    html = t._repr_html_()
    assert html.count("<tr>") == 3 and "<td style=\"text-align:right\">1,234</td>" in html


def test_rows_must_agree():
    with pytest.raises(ValueError, match="at least one row"):
        Table([])
    with pytest.raises(ValueError, match=r"row 1 has columns \['x'\], expected \['a'\]"):
        Table([{"a": 1}, {"x": 2}])
