"""The whole-chain domain checker: DNS records, policy host, policy, every MX, TLS-RPT.

Pure modules: ``finding``, ``evidence``, ``records``, ``policyhost``, ``mxset``, ``transport``.
I/O modules: ``probe`` (SMTP STARTTLS), ``fetch`` (HTTPS policy fetch), ``runner``.
"""
