"""A request body's JSON (`starter.ingress.reading.parse_json`): a lone surrogate is valid
JSON but not Unicode, so it is refused with 400 naming the body, however it is written;
text without one is read as it is, without the extra encoding pass that finds one."""

from __future__ import annotations

import pytest

from starter.ingress.errors import ApiError
from starter.ingress.reading import parse_json

LONE = "a string holds a lone surrogate (not Unicode)"


@pytest.mark.parametrize(
    ("body", "refused"),
    [
        (b'{"messageId": "m-1", "name": "caf\xc3\xa9"}', None),  # UTF-8, no surrogate
        (b'{"messageId": "m-\\ud83d\\ude00"}', None),  # a pair, escaped: one emoji
        (b'{"messageId": "m-\\\\ud800"}', None),  # a backslash, then the text "ud800"
        (b'{"messageId": "m-\\ud800"}', LONE),  # escaped
        (b'{"messageId": "m-\\uDFFF"}', LONE),  # escaped, upper case
        (b'{"messageId": "m-\xed\xa0\x80"}', LONE),  # its UTF-8 bytes
        ('{"messageId": "m-\\ud800"}'.encode("utf-16-le"), LONE),  # escaped, in UTF-16
        ('{"name": "café"}'.encode("utf-16"), None),  # UTF-16 with its mark, no surrogate
        (b'{"name": "caf\xe9"}', "not UTF-8 text"),
    ],
)
def test_a_lone_surrogate_is_refused_however_it_is_written(
    body: bytes, refused: str | None
) -> None:
    if refused is None:
        assert isinstance(parse_json(body), dict)
        return
    with pytest.raises(ApiError) as caught:
        parse_json(body)
    assert (caught.value.status, caught.value.field, caught.value.reason) == (
        400,
        "body",
        refused,
    )
