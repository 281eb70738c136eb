/*
 * Included ahead of durable-rules' own C source when setup.py compiles it into
 * levelcare._engine.durable_rules_engine.
 *
 * durable-rules 2.0.28 calls PyEval_CallObject, which Python 3.9 deprecated and
 * 3.13 removed from its headers. Without a declaration a C compiler takes the
 * function to return int, so the object pointer it returns would be cut to 32 bits;
 * GCC 14 and Clang 16 refuse such code outright. PyEval_CallObject(callable, args)
 * always meant PyObject_CallObject(callable, args), a call with positional
 * arguments only (args a tuple or NULL), which every supported Python declares, so
 * the name is mapped to it on every version.
 */
#ifndef LEVELCARE_DURABLE_CALL_H
#define LEVELCARE_DURABLE_CALL_H

#include <Python.h>

#undef PyEval_CallObject
#define PyEval_CallObject(callable, args) PyObject_CallObject((callable), (args))

#endif
