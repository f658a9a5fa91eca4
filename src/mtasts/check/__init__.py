"""The whole-chain domain checker: DNS records, policy host, policy, every MX, TLS-RPT.

Pure modules (no I/O, no clock): ``finding``, ``evidence``, ``records``, ``policyhost``,
``mxset``, ``certs``. I/O modules: ``dnsq`` (DNS questions), ``fetch`` (HTTPS policy
fetch with evidence), ``probe`` (SMTP STARTTLS), ``tlsinfo`` (SSL contexts, certificate
facts), ``runner`` (everything for a domain, concurrently, with deadlines).
"""
