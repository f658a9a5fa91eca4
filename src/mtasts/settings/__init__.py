"""One typed settings tree for every component, read from one mtasts.toml.

* :mod:`~mtasts.settings.schema`: a section is a frozen dataclass; :func:`setting` adds
  docs, bounds, secrecy and environment aliases to a field.
* :mod:`~mtasts.settings.coerce`: one conversion by annotation for every value.
* :mod:`~mtasts.settings.registry`: THE list of sections (one line to add yours).
* :mod:`~mtasts.settings.tree`: reads file < environment < options into a
  :class:`~mtasts.settings.tree.Tree`, with the origin of every value.

docs/configuration.md (generated: ``python -m mtasts.settings.docs``) lists every key.
"""
