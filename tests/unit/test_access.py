"""Who may use the server: tokens as requests carry them, the names and origins answered, the
command line's choice of a token, and the pauses after wrong ones (server/serve/access.py,
server/__main__.py, server/serve/limits.py). The server itself: tests/e2e/test_auth.py."""

from __future__ import annotations

import pytest

from server.__main__ import access_token, parse_args
from server.serve.access import (
    Verdict,
    access_for,
    is_loopback,
    link_host,
    new_token,
    read_token_file,
    remove_page_key,
    write_page_key,
)
from server.serve.limits import FAILURES_FORGOTTEN, FREE_FAILURES, Clients, Limits

TOKEN = "s3cret-token_0123456789"


@pytest.mark.parametrize(("target", "verdict"), [
    (f"/ws?token={TOKEN}", Verdict.GRANTED),
    (f"/images/3?x=1&token={TOKEN}", Verdict.GRANTED),
    ("/ws?token=s3cret%2Dtoken_0123456789", Verdict.GRANTED),  # percent-encoded, as it may be
    ("/ws", Verdict.MISSING),
    ("/ws?tokens=x", Verdict.MISSING),
    ("/ws?token=", Verdict.WRONG),
    ("/ws?token=s3cret", Verdict.WRONG),  # a prefix is not the token
    (f"/ws?token={TOKEN}x", Verdict.WRONG),
    (f"/ws?token={TOKEN}&token=guess", Verdict.WRONG),  # two: never "one of them matches"
])
def test_a_request_carries_the_token_or_not(target, verdict):
    assert access_for("127.0.0.1", token=TOKEN).verdict(target) is verdict
    assert access_for("127.0.0.1").verdict(target) is Verdict.OPEN


@pytest.mark.parametrize(("host", "answered"), [
    ("localhost:9998", True), ("127.0.0.1", True), ("[::1]:9998", True),
    ("192.168.1.5:9998", True), ("[fe80::1]:9998", True),  # addresses: no DNS rebinding
    ("photos.example", True),  # --allow-origin's host
    ("evil.example", False), ("localhost.evil.example", False), ("192.168.1.5.evil", False),
])
def test_host_names_of_this_machine(host, answered):
    access = access_for("0.0.0.0", ["https://photos.example"])
    assert bool(access.hosts.fullmatch(host)) is answered


def test_a_page_may_connect_as_the_name_it_was_served_under():
    access = access_for("0.0.0.0", page_from_disk=False)
    assert access.origin_allowed("http://192.168.1.5:9998", "192.168.1.5:9998", "/ws")
    assert not access.origin_allowed("http://192.168.1.6:9998", "192.168.1.5:9998", "/ws")
    assert access.origin_allowed(None, "localhost:9998", "/ws")  # not a browser
    assert not access.origin_allowed("null", "localhost:9998", "/ws")  # --no-page-from-disk


@pytest.mark.parametrize("origin", [
    "http://localhost:8000", "http://127.0.0.1:8000", "http://localhost", "https://localhost:9999",
    "http://[::1]:3000", "http://127.0.0.1:9998.evil.example", "http://evil.example"])
def test_no_other_page_of_this_machine_or_elsewhere(origin):
    """Another local web app (another port) is another site: only --allow-origin admits it."""
    assert not access_for("127.0.0.1").origin_allowed(origin, "localhost:9998", "/ws")
    assert access_for("127.0.0.1", [origin]).origin_allowed(origin, "localhost:9998", "/ws")


def test_the_page_from_disk_proves_itself_with_the_page_key():
    key = new_token()
    access = access_for("127.0.0.1", page_key=key)
    assert access.origin_allowed("null", "localhost:9998", f"/ws?key={key}")
    for target in ("/ws", "/ws?key=", f"/ws?key={key[:-1]}", f"/ws?key={key}&key={key}",
                   f"/ws?token={key}"):
        assert not access.origin_allowed("null", "localhost:9998", target), target
    assert not access_for("127.0.0.1").origin_allowed("null", "localhost:9998", "/ws?key=")
    # with an access token, the token is checked on its own and is the proof
    assert access_for("127.0.0.1", token=TOKEN).origin_allowed("null", "localhost:9998", "/ws")


def test_the_page_key_file_is_a_script_for_its_port(tmp_path):
    key = new_token()
    path = write_page_key(tmp_path, 9998, key)
    assert path == tmp_path / "keys" / "9998.js"
    assert f'["9998"] = "{key}"' in path.read_text()
    remove_page_key(path, "another server's key")  # another server on that port wrote it since
    assert path.exists()
    remove_page_key(path, key)
    assert not path.exists()
    remove_page_key(path, key)  # gone already: nothing to do


def test_loopback_and_links():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")
    assert not is_loopback("myhost")  # a name may resolve to any interface
    assert link_host("127.0.0.1") == "localhost" and link_host("fe80::1") == "[fe80::1]"
    assert link_host("0.0.0.0") not in ("0.0.0.0", "")


def test_the_token_file_is_its_first_line(tmp_path):
    path = tmp_path / "token"
    path.write_text(f"  {TOKEN}  \nsomething else\n")
    assert read_token_file(path) == TOKEN
    for text, error in (("", "is empty"), ("\n\n", "is empty"), ("two words\n", "only letters")):
        path.write_text(text)
        with pytest.raises(ValueError, match=error):
            read_token_file(path)
    with pytest.raises(ValueError, match="cannot read the token file"):
        read_token_file(tmp_path / "nowhere")


def test_a_token_is_needed_beyond_loopback_unless_no_auth_is_said(tmp_path):
    assert access_token(parse_args([])) == (None, False)
    assert access_token(parse_args(["--token", TOKEN])) == (TOKEN, False)
    (tmp_path / "token").write_text(TOKEN)
    assert access_token(parse_args(["--token-file", str(tmp_path / "token")])) == (TOKEN, False)
    made, shown = access_token(parse_args(["--host", "0.0.0.0"]))
    assert made and shown and made != access_token(parse_args(["--host", "0.0.0.0"]))[0]
    assert access_token(parse_args(["--host", "0.0.0.0", "--no-auth"])) == (None, False)
    with pytest.raises(SystemExit):
        parse_args(["--token", TOKEN, "--no-auth"])
    with pytest.raises(ValueError, match="only letters"):
        access_token(parse_args(["--token", "with space"]))
    assert len(new_token()) >= 32


def test_wrong_tokens_pause_an_address_longer_each_time_up_to_a_cap():
    clients = Clients(Limits())
    guesser, other = clients.join("10.0.0.1"), clients.join("10.0.0.2")
    for _ in range(FREE_FAILURES):
        clients.access_refused(guesser)
    assert clients.access_pause(guesser) == 0
    pauses = []
    for _ in range(10):
        clients.access_refused(guesser)
        pauses.append(round(clients.access_pause(guesser)))
    assert pauses == [1, 2, 4, 8, 16, 30, 30, 30, 30, 30]
    assert clients.access_pause(other) == 0
    for _ in range(10_000):  # no overflow, however many
        clients.access_refused(guesser)
    assert round(clients.access_pause(guesser)) == 30
    clients.access_granted(guesser)
    guesser.client.paused_until = 0
    clients.access_refused(guesser)
    assert clients.access_pause(guesser) == 0  # the right token forgave the address
    for _ in range(FREE_FAILURES):
        clients.access_refused(guesser)
    guesser.client.failed_at -= FAILURES_FORGOTTEN + 1  # long ago
    guesser.client.paused_until = 0
    clients.access_refused(guesser)
    assert clients.access_pause(guesser) == 0
