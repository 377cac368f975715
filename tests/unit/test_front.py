"""The front door's request heads, parsed in process (the e2e tests send them over a socket)."""

from __future__ import annotations

import http

import pytest

from server.serve.front import BadRequest, parse_head


def test_a_request_head_is_parsed_with_its_fields_in_order():
    request = parse_head(b"GET /images/3?token=x HTTP/1.1\r\nHost: localhost:9998\r\n"
                         b"Connection: keep-alive, Upgrade\r\nX-Odd:  \xe9t\xe9 \r\n\r\n")
    assert (request.method, request.target, request.version, request.path) == \
        ("GET", "/images/3?token=x", "HTTP/1.1", "/images/3")
    assert request.headers == (("host", "localhost:9998"),
                               ("connection", "keep-alive, Upgrade"), ("x-odd", "été"))
    assert request.keep_alive and not request.has_body and not request.upgrade


def test_http_1_0_closes_unless_asked_and_a_lowercase_method_is_kept_as_sent():
    assert not parse_head(b"GET / HTTP/1.0\r\n\r\n").keep_alive
    assert parse_head(b"get / HTTP/1.1\r\nHost: a\r\n\r\n").method == "get"  # then 405


@pytest.mark.parametrize(("head", "status"), [
    (b"GET /\r\n\r\n", 400),                                             # HTTP/0.9
    (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
    (b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400),                        # two spaces
    (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\n\r\n", 400),                                    # no Host
    (b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", 400),             # h11 would unfold it
    (b"GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", 400),                  # a bare LF
    (b"GET / HTTP/1.1\r\nHost: a\r\nX: \x01\r\n\r\n", 400),             # a control character
    (b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
    (b"GET / HTTP/1.1\r\nHost: a\r\n" + b"X: y\r\n" * 64 + b"\r\n", 431),
])
def test_heads_a_proxy_might_read_differently_are_refused(head, status):
    with pytest.raises(BadRequest) as refused:
        parse_head(head)
    assert refused.value.answer.status == http.HTTPStatus(status)
    assert refused.value.answer.close
