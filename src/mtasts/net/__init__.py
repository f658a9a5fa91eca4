"""Shared I/O adapters: DNS (``dns``), TLS contexts (``tls``), the one HTTPS client
(``https``) and the bounded HTTP/1.1 request reader of our servers (``httpserver``)."""
