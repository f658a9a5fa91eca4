"""Datagrams a sending MTA writes to ``tlsrpt collect`` (TLSRPT datagram protocol, as
in the Postfix / tlsrpt-reporter library): one successful session and one failed one,
and a way to send them over a real unix datagram socket."""

from __future__ import annotations

import socket
from pathlib import Path

import orjson

OK = orjson.dumps(
    {
        "dpv": "1",
        "d": "a.example",
        "pr": "v=TLSRPTv1; rua=mailto:r@a.example",
        "policies": [
            {
                "policy-type": 2,
                "policy-domain": "a.example",
                "policy-string": [
                    "version: STSv1",
                    "mode: enforce",
                    "mx: mx.a.example",
                    "max_age: 86400",
                ],
                "mx-host": ["mx.a.example"],
                "t": 0,
                "f": 0,
            }
        ],
    }
)
FAIL = orjson.dumps(
    {
        "dpv": "1",
        "d": "b.example",
        "pr": "",
        "policies": [
            {
                "policy-type": 9,
                "failure-details": [
                    {"c": 201, "s": "192.0.2.1", "n": "mx.b.example", "r": "198.51.100.7"}
                ],
                "t": 1,
                "f": 1,
            }
        ],
    }
)


def send_datagrams(path: Path, datagrams: list[bytes]) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        for d in datagrams:
            s.sendto(d, str(path))
