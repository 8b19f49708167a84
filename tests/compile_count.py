"""Count XLA compilations of one jitted function (for compile-count tests).

``jax.log_compiles`` logs ``Compiling jit(NAME) ...`` once per compilation of ``NAME`` (a cache hit logs
nothing); the handler counts those lines for the function's name.
"""

from __future__ import annotations

import contextlib
import logging

import jax


class _Counter(logging.Handler):
    def __init__(self, name: str | None):
        super().__init__(logging.DEBUG)
        self.tag, self.count = "Compiling jit(" + (f"{name})" if name else ""), 0

    def emit(self, record):
        if record.getMessage().startswith(self.tag):
            self.count += 1


@contextlib.contextmanager
def count_compiles(name: str | None = None):
    """Yield a counter whose ``.count`` is the number of compilations of jitted function ``name``
    (of any jitted function when None)."""
    counter = _Counter(name)
    logger = logging.getLogger("jax")
    old_level = logger.level
    logger.addHandler(counter)
    logger.setLevel(logging.DEBUG)
    try:
        with jax.log_compiles():
            yield counter
    finally:
        logger.removeHandler(counter)
        logger.setLevel(old_level)
