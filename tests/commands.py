"""The real ``mtasts`` command line, run in a child process as an operator runs it (the
checkout's code, through this interpreter, so no installed console script is needed)."""

from __future__ import annotations

import sys

#: argv that runs ``mtasts``; append the command: ``[*MTASTS, "tlsrpt", "collect", ...]``
MTASTS = (sys.executable, "-c", "from mtasts.cli.main import main; main()")
