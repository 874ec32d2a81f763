"""The Host check: a page reached through a name that is not this machine's shows one line and no data.

A web page on evil.example can re-point its own name at 127.0.0.1 (DNS rebinding) and then talk to
the app on localhost as if it were its own origin: same-origin rules, CORS and XSRF tokens do not
stop it, but the browser still sends ``Host: evil.example``. So when the app listens on this machine
only, every page calls ``guard_host()`` first and stops unless the Host names this machine (localhost,
127.0.0.1, [::1], on the app's port) or a name listed in EXPLORER_ALLOWED_HOSTS (a reverse proxy's).
An app shared on purpose (``--server.address 0.0.0.0``) answers to any name unless that list is set.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from urllib.parse import urlsplit

import streamlit as st

ALLOWED_HOSTS_ENV = "EXPLORER_ALLOWED_HOSTS"
LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})


def host_allowed(host: str | None, *, address: str | None, port: int, extra: Iterable[str] = ()) -> bool:
    """Whether a request whose Host header is ``host`` may use the app served on ``address``:``port``."""
    extra = {name.strip().lower().rstrip(".") for name in extra if name.strip()}
    listening = (address or "").strip().strip("[]").lower()
    if listening not in LOOPBACK and not extra:
        return True  # shared with the network on purpose: any name reaches it anyway
    if not host:
        return True  # no HTTP request behind this run (AppTest); a browser always sends Host
    try:
        parts = urlsplit(f"//{host}")
        name, given_port = (parts.hostname or "").rstrip("."), parts.port
    except ValueError:  # a port that is not a number, or out of range
        return False
    if parts.username is not None or parts.path or parts.query or parts.fragment:
        return False
    if name in extra:
        return True  # a proxy's public name: its port is the proxy's, not ours
    return name in LOOPBACK and (given_port or 80) == port


def guard_host() -> None:
    """Stop the page with one line unless its request's Host is allowed (call it first on every page)."""
    host = st.context.headers.get("Host")
    extra = os.environ.get(ALLOWED_HOSTS_ENV, "").split(",")
    port = int(st.get_option("server.port"))
    if not host_allowed(host, address=st.get_option("server.address"), port=port, extra=extra):
        st.error(f"This app answers only on this machine: open http://localhost:{port}/ (or list the name you use "
                 f"in {ALLOWED_HOSTS_ENV}).")
        st.stop()
