"""Automatic certificates for the policy host (issue 14): ACME through certbot's ``acme``
library, tls-alpn-01 and http-01 challenges, one certificate per name chosen by SNI,
renewal, pre-checks (addresses, CAA, ``_mta-sts``), on-demand issuance for hosted domains.

Pure: settings, renewal, caa, hello. I/O: store, client, challenges, prechecks, manager.
"""
