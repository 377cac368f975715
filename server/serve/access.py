"""Who may use the server: its access token, and the Host names and Origins it answers.

The token guards everything that shows the gallery: the WebSocket handshake (so queries,
browsing and uploads), `/images/<id>` and the details of `/health`. A client sends it as the
query parameter `token` of the request (`/ws?token=...`, `/images/5?token=...`), the one way
that works everywhere: a browser can set no header on a WebSocket handshake or an `<img>`, and a
cookie would not reach the server from the page opened from disk (file://). The page's own files
are public (they hold no pictures), so that a link `http://host:9998/#token=...` loads the page,
which keeps the token and sends it with every request (docs/server.md, Access).

Host names and Origins defend against other web sites (DNS rebinding, cross-site WebSockets),
which matters most for a server without a token; see `access_for`. A page may use the server
when it is the server's own page (its Origin is what the request's Host names), one of
`--allow-origin`'s, or the page opened from disk. That page's Origin is `null`, which any web
site can give its requests too (a sandboxed frame, a `data:` document), so `null` alone proves
nothing: it must also carry the page key, a fresh secret the server writes at start into a
file beside index.html that only a page opened from this machine's disk can load
(`write_page_key`; docs/server.md, The page from disk).
"""

from __future__ import annotations

import contextlib
import enum
import hmac
import ipaddress
import os
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
# Browsers send an Origin with every WebSocket handshake and with fetch(); non-browser clients
# (and a plain <img>) send none. The page from disk says "null", as sandboxed frames do.
NULL_ORIGIN = Origin("null")
PAGE_KEY = "key"  # the query parameter that carries the page key
PAGE_KEYS = "keys"  # the folder beside index.html that holds them, one file per port
WILDCARDS = ("0.0.0.0", "::", "")  # listen on every interface
PROBE = "198.51.100.1"  # TEST-NET-2: a connected UDP socket names the route's address, no packet


class Verdict(enum.Enum):
    OPEN = "open"        # the server needs no token
    GRANTED = "granted"  # the request carries the token
    MISSING = "missing"  # it carries none
    WRONG = "wrong"      # it carries another (or more than one)


def sent_values(target: str, parameter: str = "token") -> list[str]:
    """The values of a query parameter (`token`, `key`) in a request target."""
    query = target.partition("?")[2]
    return [unquote(value) for name, _, value in (part.partition("=") for part in
                                                  query.split("&")) if name == parameter]


def same_secret(sent: list[str], secret: str) -> bool:
    """Whether exactly one value was sent and it is `secret`, compared in constant time (how
    long the comparison takes says nothing of how much matched)."""
    return len(sent) == 1 and hmac.compare_digest(sent[0].encode(), secret.encode())


@dataclass(frozen=True)
class Access:
    """The token a request needs (None: none), the Host names answered, the Origins allowed
    besides the server's own page, and whether (and with which key) the page from disk is."""

    token: str | None
    hosts: re.Pattern[str]
    origins: tuple[Origin | None, ...]
    page_from_disk: bool = True
    page_key: str | None = None  # what the page from disk must send, on a server without token

    def verdict(self, target: str) -> Verdict:
        if self.token is None:
            return Verdict.OPEN
        sent = sent_values(target)
        if not sent:
            return Verdict.MISSING
        return Verdict.GRANTED if same_secret(sent, self.token) else Verdict.WRONG

    def carries_token(self, target: str) -> bool:
        return self.token is not None and bool(sent_values(target))

    def origins_for(self, host: str, target: str) -> list[Origin | None]:
        """The Origins accepted on a request for `target` whose Host passed: the allowed ones,
        the server's own page as reached by that name (http://192.168.1.5:9998 on a phone, not
        another port of it), and `null` from the page from disk when the request proves to be
        that page. On a server with a token, the token (checked on its own) is that proof; on
        one without, the page key."""
        own = [Origin(f"http://{host.lower()}"), Origin(f"https://{host.lower()}")]
        from_disk = self.page_from_disk and (
            self.token is not None or (self.page_key is not None
                                       and same_secret(sent_values(target, PAGE_KEY),
                                                       self.page_key)))
        return [*self.origins, *own, *([NULL_ORIGIN] if from_disk else [])]

    def origin_allowed(self, origin: str | None, host: str, target: str) -> bool:
        """Whether a page of `origin` may use the server (as websockets checks a handshake)."""
        return origin in self.origins_for(host, target)


def access_for(host: str, allow_origins: Sequence[str] = (), page_from_disk: bool = True,
               token: str | None = None, page_key: str | None = None) -> Access:
    """Answer Host names of this machine (loopback names, IP addresses, the host listened on,
    the allowed origins' hosts) and Origins that are this machine's pages: the server's own
    page, the allowed origins, and the page from disk (`page_from_disk`, with `page_key` on a
    server without token). Any other page, on another site or on another port of this machine
    (another local web app), is refused."""
    names = [LOCAL_NAMES, IP_LITERAL, re.escape(host),
             *(re.escape(urlsplit(origin).hostname or "") for origin in allow_origins)]
    hosts = re.compile(rf"({'|'.join(names)})(:\d{{1,5}})?", re.IGNORECASE)
    origins = (None, *(Origin(origin) for origin in allow_origins))
    return Access(token, hosts, origins, page_from_disk, page_key)


# ---------------------------------------------------------------------------- the page key

def write_page_key(web_dir: Path, port: int, key: str) -> Path:
    """Write the page key of the server on `port` where the page from disk loads it:
    `web_dir/keys/<port>.js`, a classic script that a page opened from that folder may run and
    no web site can read (a browser lets no http(s) page read a file://, and the server serves
    only the folder's top-level files, never `keys/`). The key is new at every start, so one
    read before is worth nothing now. Returns the file; OSError where it cannot be written."""
    folder = Path(web_dir) / PAGE_KEYS
    folder.mkdir(exist_ok=True)
    path = folder / f"{port}.js"
    script = ("// written by `python -m server` at start (a new key each time): the page opened\n"
              "// from disk sends it to prove it is this machine's page. Never commit it.\n"
              f'(window.WORDPIX_KEYS = window.WORDPIX_KEYS || {{}})["{port}"] = "{key}";\n')
    # beside its final name, then renamed: a page never loads half a file
    partial = path.with_suffix(".js.tmp")
    partial.write_text(script, encoding="utf-8")
    os.replace(partial, path)
    return path


def remove_page_key(path: Path, key: str) -> None:
    """Remove the key file at exit, unless another server on the same port wrote its own."""
    with contextlib.suppress(OSError):
        if key in path.read_text(encoding="utf-8"):
            path.unlink()


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
