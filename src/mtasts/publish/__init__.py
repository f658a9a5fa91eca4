"""What a receiving domain publishes: the policy file, the DNS records, and the policy host.

Pure modules: ``generate`` (policy + records), ``site`` (request -> response).
I/O module: ``server`` (the asyncio HTTP/1.1 policy host).
"""
