"""The protocol's strict JSON and its validation, in process (server/serve/protocol.py)."""

from __future__ import annotations

import json

import pytest

from server.serve.gallery import Item
from server.serve.protocol import (
    MAX_ID,
    MAX_TEXT_MESSAGE,
    BrowseMessage,
    ClientError,
    DescribeMessage,
    ParseMessage,
    PingMessage,
    Pong,
    QueryMessage,
    Results,
    ResultWriter,
    decode_request,
    encode_reply,
    error_reply,
    is_upload,
    read_request,
    request_id,
    results,
    show,
    whole_number,
)


def code_of(message: str | bytes) -> str:
    with pytest.raises(ClientError) as raised:
        decode_request(message)
    return raised.value.code


@pytest.mark.parametrize("text", ['{"q": NaN}', '{"q": Infinity}', '{"q": -Infinity}',
                                  '{"q": 1e309}', "[1, 2]", '"query"', "{", "",
                                  '{"q": ' + "9" * 5000 + "}"])
def test_what_is_not_a_strict_json_object_is_bad_json(text):
    assert code_of(text) == "bad_json"


def test_a_binary_json_object_is_read_and_binary_garbage_is_bad_json():
    assert decode_request(b'{"type": "ping"}') == {"type": "ping"}
    assert code_of(b'{"\xff"}') == "bad_json"
    assert not is_upload(b'  {"type": "ping"}') and is_upload(b"\xff\xd8\xff") and \
        not is_upload("text")


def test_a_message_over_the_limit_is_too_large_counted_in_utf8_bytes():
    assert code_of('{"q": "' + "a" * MAX_TEXT_MESSAGE + '"}') == "too_large"
    wide = '{"q": "' + "é" * (MAX_TEXT_MESSAGE // 2) + '"}'  # fewer characters than bytes
    assert len(wide) < MAX_TEXT_MESSAGE and code_of(wide) == "too_large"


@pytest.mark.parametrize("value", ["a", 7, -MAX_ID, None])
def test_an_id_is_a_string_a_safe_integer_or_null(value):
    assert request_id({"id": value}) == value


@pytest.mark.parametrize("value", [MAX_ID + 1, 1.5, True, [1], {"a": 1}])
def test_any_other_id_is_a_bad_request(value):
    with pytest.raises(ClientError) as raised:
        request_id({"id": value})
    assert raised.value.code == "bad_request"


def test_whole_numbers_are_checked_and_booleans_are_not_numbers():
    assert whole_number({}, "k", 24, 1, 200) == 24
    assert whole_number({"k": 5}, "k", 24, 1, 200) == 5
    for value in (0, 201, True, 2.0, "5"):
        with pytest.raises(ClientError, match='"k" must be a whole number from 1 to 200'):
            whole_number({"k": value}, "k", 24, 1, 200)


def test_replies_are_strict_json_and_one_that_cannot_be_is_an_internal_error():
    assert json.loads(encode_reply(Pong(type="pong", id=3))) == {"type": "pong", "id": 3}
    broken = error_reply("bad_query", "x", "the-id")
    broken["retry_ms"] = float("nan")  # type: ignore[typeddict-item]
    reply = json.loads(encode_reply(broken))
    assert reply["type"] == "error" and reply["code"] == "internal" and reply["id"] == "the-id"


def test_a_shown_value_is_cut_short():
    assert show("x" * 10) == "'xxxxxxxxxx'"
    assert len(show("x" * 1000)) == 60 and show("x" * 1000).endswith("...")


def test_each_request_is_read_as_its_typed_message_with_its_defaults():
    def read(text: str):
        request = decode_request(text)
        return read_request(request, request_id(request))

    assert read('{"type": "query", "q": "dog", "id": 7}') == QueryMessage(7, "dog", 24, True)
    assert read('{"type": "query", "q": "dog", "k": 3, "exclude_query_images": false}') == \
        QueryMessage(None, "dog", 3, False)
    assert read('{"type": "browse", "after": 40, "id": "a"}') == BrowseMessage("a", 40, 24)
    assert read('{"type": "describe", "image": 12, "k": 5}') == DescribeMessage(None, 12, 5)
    assert read('{"type": "ping"}') == PingMessage(None)
    assert read('{"type": "parse", "q": "car-yellow"}') == ParseMessage(None, "car-yellow")


@pytest.mark.parametrize(("request_", "code", "says"), [
    ({"type": "query"}, "bad_request", 'needs "q"'),
    ({"type": "query", "q": 3}, "bad_request", 'needs "q"'),
    ({"type": "query", "q": "a", "k": 0}, "bad_request", '"k" must be a whole number'),
    ({"type": "query", "q": "a", "exclude_query_images": 1}, "bad_request", "true or false"),
    ({"type": "browse", "offset": 24}, "bad_request", 'send "after"'),
    ({"type": "describe"}, "bad_request", '"image" must be'),
    ({"type": "describe", "image": 10**9}, "bad_request", '"image" must be'),
    ({"type": "parse"}, "bad_request", 'a parse message needs "q"'),
    ({"type": "search", "q": "a"}, "bad_type", "unknown message type 'search'"),
    ({"q": "a"}, "bad_type", "unknown message type None"),
])
def test_a_request_with_wrong_fields_is_refused_saying_which(request_, code, says):
    with pytest.raises(ClientError) as refused:
        read_request(request_, None)
    assert refused.value.code == code and says in str(refused.value)


WRITTEN_ITEMS = [Item(1, 0, "a/cat.jpg", 10, 1, 'a "cat" été \\ \n', "2019-07-01T12:00:00"),
                 Item(22, 1, "b/phone.HEIC", 20, 2, None, None),  # preview: its thumbnail
                 Item(333, 2, "c.png", 30, 3, "", "2020-01-01T00:00:00")]


def thumb_of(item: Item) -> str | None:
    return None if item.id == 333 else f"key{item.id}"  # one image without a thumbnail


@pytest.mark.parametrize("scores", [[0.1234, -0.5, 1.0], [None, None, None], [1e-05, 0.0, -1.0]])
def test_written_results_are_the_text_json_writes_for_their_dicts(scores):
    # keep=2: the kept fields are forgotten on the way, and the text stays the same
    writer = ResultWriter(thumb_of, keep=2)
    expected = json.dumps(results(WRITTEN_ITEMS, scores, [thumb_of(i) for i in WRITTEN_ITEMS]))
    for _ in range(2):  # written, then from what is kept
        assert writer.write(WRITTEN_ITEMS, scores) == expected


def test_a_reply_with_written_results_is_the_reply_with_their_dicts():
    scores = [0.5, 0.25, 0.125]
    fields = dict(type="results", id=7, q="cat", query="cat", terms=[], corrections=[],
                  suggestions=[], nearest_words=[("cat", 1.0)], line=None, relevant=None,
                  ms=1.5)
    written = Results(**fields, results=ResultWriter(thumb_of).write(WRITTEN_ITEMS, scores))
    as_dicts = Results(**fields, results=results(WRITTEN_ITEMS, scores,
                                                 [thumb_of(i) for i in WRITTEN_ITEMS]))
    assert json.loads(encode_reply(written)) == json.loads(encode_reply(as_dicts))


def test_a_record_changed_under_the_same_id_is_written_anew():
    writer = ResultWriter(thumb_of)
    before = WRITTEN_ITEMS[0]
    after = before._replace(caption="another caption")
    writer.write([before], [0.5])
    assert json.loads(writer.write([after], [0.5]))[0]["caption"] == "another caption"


def test_a_score_that_is_not_finite_is_not_written():
    with pytest.raises(ValueError, match="not finite"):
        ResultWriter(thumb_of).write(WRITTEN_ITEMS[:1], [float("nan")])
