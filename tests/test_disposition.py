"""The ingress's Content-Disposition parser gives aiohttp's answers, only faster."""

import warnings

from aiohttp.multipart import parse_content_disposition
from hypothesis import example, given
from hypothesis import strategies as st

from ocrflow.http.multipart import _PLAIN_DISPOSITION, parse_disposition

TRICKY = " \t;=\"\\/*'%éa"
values = st.one_of(
    st.text(alphabet=TRICKY, max_size=8).map(lambda v: f'"{v}"'),
    st.text(alphabet=TRICKY, max_size=8),
)
params = st.builds(
    lambda before, key, equals, value: f"{before};{key}{equals}{value}",
    st.sampled_from(["", " ", "\t", "  "]),
    st.sampled_from(["name", "filename", " name", "filename*", "NAME", "x", "name*0"]),
    st.sampled_from(["=", " =", "= "]),
    values,
)
headers = st.builds(
    lambda disptype, given, tail: disptype + "".join(given) + tail,
    st.sampled_from(["form-data", "Form-Data", "attachment", " form-data", "form data"]),
    st.lists(params, max_size=4),
    st.sampled_from(["", " ", ";", "\t"]),
)


def answer(parse: object, header: str) -> tuple[object, list[type[Warning]]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = parse(header)  # type: ignore[operator]
    return result, [w.category for w in caught]


@given(headers)
@example('form-data; name="file"; filename="/scans/a;b.png"')
@example('form-data; name="a"; name="b"')
@example('form-data; name=""')
def test_same_answers_as_aiohttp(header: str) -> None:
    assert answer(parse_disposition, header) == answer(parse_content_disposition, header)


def test_what_clients_send_takes_the_fast_path() -> None:
    for header in (
        'form-data; name="file"; filename="scan 1.png"',
        'form-data; name="outputs"',
        'form-data;name="file";filename="/tmp/x.pdf"',
    ):
        assert _PLAIN_DISPOSITION.fullmatch(header), header
    assert parse_disposition('form-data; name="file"; filename="/tmp/x.pdf"') == (
        "form-data",
        {"name": "file", "filename": "tmp/x.pdf"},
    )
