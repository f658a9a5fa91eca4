"""Two instances sharing one state directory: one order per name, both serve it."""

from __future__ import annotations

import pytest
from acme_helpers import wait_for

from mtasts.acme.manager import CertManager
from mtasts.acme.prechecks import Prechecks

pytestmark = [pytest.mark.lab, pytest.mark.peer]


async def test_second_instance_uses_the_first_ones_certificate(acme_host) -> None:
    host = await acme_host(("shared.test",), pebble={"always_valid": True})
    name = "mta-sts.shared.test"
    await host.wait_issued(name)
    settings = host.manager.settings
    other = CertManager(
        settings, [name], prechecks=Prechecks(settings, host.lab.nameserver), tick=0.2
    )
    other.start()
    try:
        assert other.certs[name].life == host.manager.certs[name].life  # from disk
        # the first instance renews; the second picks the new file up without ordering
        before = host.manager.certs[name]
        host.manager.renew_now(name)
        await wait_for(lambda: host.manager.certs[name] is not before, 15)
        await wait_for(lambda: other.certs[name].mtime == host.manager.certs[name].mtime, 5)
        assert other.metrics.registry.get_sample_value(
            "mtasts_acme_issuance_total", {"result": "issued"}
        ) in (None, 0.0)
        # both find the certificate due at once: one orders, the other, waiting on the
        # name's lock, finds the new file and uses it
        issued = host.sample("mtasts_acme_issuance_total", result="issued")
        host.manager.renew_now(name)
        other.renew_now(name)

        def count(manager: CertManager, result: str) -> float:
            value = manager.metrics.registry.get_sample_value(
                "mtasts_acme_issuance_total", {"result": result}
            )
            return value or 0.0

        def settled() -> bool:
            return (
                count(host.manager, "issued")
                + count(other, "issued")
                + count(host.manager, "from-other-instance")
                + count(other, "from-other-instance")
                == issued + 2
            )

        await wait_for(settled, 15)
        assert count(host.manager, "issued") + count(other, "issued") == issued + 1
    finally:
        await other.close()
