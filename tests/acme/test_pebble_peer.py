"""The test CA itself: a listening port taken between "found free" and pebble's bind
(seen once on a shared machine) makes the first start move to other ports, not fail."""

from __future__ import annotations

import socket
from pathlib import Path

import trustme
from pebble_peer import Pebble, free_port, require_pebble


def test_a_port_taken_before_pebble_binds_it_is_replaced(tmp_path: Path) -> None:
    require_pebble()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = int(taken.getsockname()[1])
        peb = Pebble(tmp_path, trustme.CA(), ("127.0.0.1", 53), tls_port=free_port(), port=busy)
        try:
            peb.start()
            assert peb.port != busy
            assert "address already in use" in peb.log()
            assert peb.get("/roots/0", management=True).startswith(b"-----BEGIN CERTIFICATE")
        finally:
            peb.stop()
