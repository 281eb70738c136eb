"""The durable-rules release levelcare compiles its rules engine from.

setup.py reads these two values (without importing levelcare): it fetches that
release's source distribution from the package index, checks its sha256 and
compiles the C engine into ``levelcare._engine.durable_rules_engine``.
"""

#: The durable-rules release whose C source the engine is compiled from.
VERSION = "2.0.28"
#: sha256 of ``durable_rules-2.0.28.tar.gz`` as published on PyPI.
SDIST_SHA256 = "053b26f5e48d312d4fa27995243f954671be6eece477f150c059c364eb4d7d61"
