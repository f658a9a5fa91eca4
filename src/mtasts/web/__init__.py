"""``mtasts web``: the dashboard and JSON API over the received TLS-RPT reports.

Read-only: every route is a GET (or HEAD); nothing in the store changes. Pages are
rendered on the server (Jinja2), tables work without JavaScript, and the charts (Chart.js)
and in-place filtering (htmx) are vendored static files under a strict CSP.
"""
