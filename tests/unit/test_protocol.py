"""The protocol's strict JSON and its validation, in process (server/serve/protocol.py)."""

from __future__ import annotations

import json

import pytest

from server.serve.protocol import (
    MAX_ID,
    MAX_TEXT_MESSAGE,
    ClientError,
    Pong,
    decode_request,
    encode_reply,
    error_reply,
    is_upload,
    request_id,
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
