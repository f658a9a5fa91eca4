"""The simulated mail internet: real DNS, HTTPS and SMTP servers on loopback.

Nothing is mocked: a scenario (TOML file or values built in code) becomes an
authoritative DNS server, ``mta-sts.<domain>`` policy hosts, MX hosts, attackers and
TLS-RPT receivers, each host on its own 127.x.y.z address, started without root in a
fraction of a second.

In async code::

    from mtasts.lab import Lab, Scenario
    async with Lab(Scenario.load("examples/scenarios/demo.toml")) as lab:
        lab.nameserver            # ("127.a.b.c", port): point the resolver here
        lab.ca_file               # the lab CA: trust only this
        lab.https_port, lab.smtp_port
        lab.env                   # MTASTS_NAMESERVER, MTASTS_CA_FILE, MTASTS_*_PORT
        lab.set_policy_host("good.test", status=500)    # live changes
        lab.policy_requests("good.test"), lab.mx("mx1.good.test").received

In sync code, ``with LabThread(scenario) as lab:``. From the shell,
``mtasts lab run --scenario FILE -- COMMAND`` and ``mtasts lab up --scenario FILE``.

For tests in other directories, ``mtasts.lab.testing`` has ``healthy_domain()`` (a
domain that does everything right, as a Scenario you can add others to with ``+``),
``policy_text()``, ``start_lab()``, ``running_lab()`` and ``LabPool`` (wrap it in a
fixture; see that module). ``tests/lab/conftest.py`` has the ``lab_factory`` fixture.
"""

from mtasts.lab.dns_server import DnsQuery
from mtasts.lab.https_host import HttpRequest
from mtasts.lab.lab import Lab
from mtasts.lab.scenario import DnsSpec, DomainSpec, HostSpec, PolicyHostSpec, Scenario, SmtpSpec
from mtasts.lab.smtp_host import Received
from mtasts.lab.sync import LabThread

__all__ = [
    "DnsQuery",
    "DnsSpec",
    "DomainSpec",
    "HostSpec",
    "HttpRequest",
    "Lab",
    "LabThread",
    "PolicyHostSpec",
    "Received",
    "Scenario",
    "SmtpSpec",
]
