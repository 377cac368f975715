"""Who may use the server: its access token, and the Host names and Origins it answers.

The token guards everything that shows the gallery: the WebSocket handshake (so queries,
browsing and uploads), `/images/<id>` and the details of `/health`. A client sends it as the
query parameter `token` of the request (`/ws?token=...`, `/images/5?token=...`), the one way
that works everywhere: a browser can set no header on a WebSocket handshake or an `<img>`, and a
cookie would not reach the server from the page opened from disk (file://). The page's own files
are public (they hold no pictures), so that a link `http://host:9998/#token=...` loads the page,
which keeps the token and sends it with every request (docs/server.md, Access).

Host names and Origins defend against other web sites (DNS rebinding, cross-site WebSockets),
which matters most for a server without a token; see `host_names` and `origins`.
"""

from __future__ import annotations

import contextlib
import enum
import hmac
import ipaddress
import re
import secrets
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from websockets.typing import Origin

# URL-unreserved characters: a token goes into links and query strings as it is
TOKEN = re.compile(r"[A-Za-z0-9._~-]+")
SHORT_TOKEN = 16  # characters; a shorter one is accepted with a warning
LOCAL_NAMES = r"localhost|127\.0\.0\.1|\[::1\]"
# A Host that is an IP address cannot come from DNS rebinding (that needs a name of the
# attacker's that resolves to this machine): a phone that opens http://192.168.1.5:9998/ passes.
IP_LITERAL = r"\d{1,3}(?:\.\d{1,3}){3}|\[[0-9A-Fa-f:.]+\]"
# Browsers send these Origins: the page from disk says "null"; non-browser clients send none.
LOCAL_ORIGINS: list[Origin | re.Pattern[str] | None] = [
    None, Origin("null"), re.compile(rf"https?://({LOCAL_NAMES})(:\d{{1,5}})?")]
WILDCARDS = ("0.0.0.0", "::", "")  # listen on every interface
PROBE = "198.51.100.1"  # TEST-NET-2: a connected UDP socket names the route's address, no packet


class Verdict(enum.Enum):
    OPEN = "open"        # the server needs no token
    GRANTED = "granted"  # the request carries the token
    MISSING = "missing"  # it carries none
    WRONG = "wrong"      # it carries another (or more than one)


def sent_tokens(target: str) -> list[str]:
    """The values of the `token` parameters in a request target's query."""
    query = target.partition("?")[2]
    return [unquote(value) for name, _, value in (part.partition("=") for part in
                                                  query.split("&")) if name == "token"]


@dataclass(frozen=True)
class Access:
    """The token a request needs (None: none), and the Host names and Origins answered."""

    token: str | None
    hosts: re.Pattern[str]
    origins: tuple[Origin | re.Pattern[str] | None, ...]

    def verdict(self, target: str) -> Verdict:
        if self.token is None:
            return Verdict.OPEN
        sent = sent_tokens(target)
        if not sent:
            return Verdict.MISSING
        # in constant time: how long the comparison takes says nothing of how much matched
        if len(sent) == 1 and hmac.compare_digest(sent[0].encode(), self.token.encode()):
            return Verdict.GRANTED
        return Verdict.WRONG

    def carries_token(self, target: str) -> bool:
        return self.token is not None and bool(sent_tokens(target))

    def origins_for(self, host: str) -> list[Origin | re.Pattern[str] | None]:
        """The Origins accepted on a request whose Host passed: the allowed ones, and the
        server's own page as reached by that name (http://192.168.1.5:9998 on a phone)."""
        return [*self.origins, Origin(f"http://{host.lower()}"), Origin(f"https://{host.lower()}")]

    def origin_allowed(self, origin: str | None, host: str) -> bool:
        """Whether a page of `origin` may use the server (as websockets checks a handshake)."""
        return any(allowed == origin or (isinstance(allowed, re.Pattern) and origin is not None
                                         and allowed.fullmatch(origin) is not None)
                   for allowed in self.origins_for(host))


def access_for(host: str, allow_origins: Sequence[str] = (), page_from_disk: bool = True,
               token: str | None = None) -> Access:
    """Answer Host names of this machine (loopback names, IP addresses, the host listened on,
    the allowed origins' hosts) and WebSocket Origins that are this machine's pages: the page
    from disk ("null": so is a sandboxed frame's on any site, hence `page_from_disk`), the
    server's own page, and the allowed origins."""
    names = [LOCAL_NAMES, IP_LITERAL, re.escape(host),
             *(re.escape(urlsplit(origin).hostname or "") for origin in allow_origins)]
    hosts = re.compile(rf"({'|'.join(names)})(:\d{{1,5}})?", re.IGNORECASE)
    origins = (*(o for o in LOCAL_ORIGINS if page_from_disk or o != "null"),
               re.compile(rf"https?://{re.escape(host)}(:\d{{1,5}})?"),
               *(Origin(origin) for origin in allow_origins))
    return Access(token, hosts, origins)


# ---------------------------------------------------------------------------- the command line

def is_loopback(host: str) -> bool:
    """Whether listening on `host` reaches this machine only; a name other than localhost
    counts as reaching further (it may resolve to any interface)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_token(token: str, source: str) -> str:
    if not token:
        raise ValueError(f"{source} is empty: give a token, e.g. {new_token()}")
    if not TOKEN.fullmatch(token):
        raise ValueError(f"{source} may hold only letters, digits and - . _ ~ (a token goes "
                         f"into links as it is), e.g. {new_token()}")
    return token


def read_token_file(path: Path) -> str:
    """The token in the first line of `path`, without surrounding spaces."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"cannot read the token file {path}: {error}") from None
    return check_token(lines[0].strip() if lines else "", f"the token file {path}")


def new_token() -> str:
    return secrets.token_urlsafe(24)  # 32 characters, 192 random bits


def link_host(host: str) -> str:
    """The host of a link to a server listening on `host` that another device can open: the
    machine's address on its network when listening on every interface."""
    if host in ("127.0.0.1", "::1"):
        return "localhost"
    if host in WILDCARDS:
        host = machine_address()
    return f"[{host}]" if ":" in host else host


def machine_address() -> str:
    """This machine's address on the network its default route leads to, else its name."""
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect((PROBE, 9))
        return str(probe.getsockname()[0])
    return socket.gethostname()
