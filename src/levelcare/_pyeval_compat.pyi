# The C extension in _pyeval_compat.c.

#: 1 when this build defines PyEval_CallObject (built for Python 3.13 or later), else 0.
PROVIDES_PYEVAL_CALLOBJECT: int
