"""Collection of TLS session outcomes: libtlsrpt datagrams, Postfix logs, Python API."""
