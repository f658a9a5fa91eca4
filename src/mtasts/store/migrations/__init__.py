"""Alembic migrations of the store (run by :mod:`mtasts.store.migrate`; no alembic.ini).

A new migration: ``versions/NNNN_what.py`` with ``revision = "NNNN"`` and
``down_revision`` the previous one; write the operations out (never import the live
tables: a migration is frozen at the version it creates).
"""
