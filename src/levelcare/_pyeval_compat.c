/*
 * PyEval_CallObject for durable-rules on Python 3.13 and later.
 *
 * durable-rules 2.0.28 is a C extension that calls PyEval_CallObject, a function
 * Python 3.13 removed from its C API. Built against 3.13 headers, durable's
 * extension keeps an unresolved reference to that name and cannot be loaded.
 * This module defines the function again, with the meaning it had before 3.13
 * (a call with positional arguments only, PyObject_CallObject), and levelcare
 * loads it with RTLD_GLOBAL before durable, so the dynamic linker resolves
 * durable's reference here.
 *
 * Built against the headers of Python 3.12 or earlier, where PyEval_CallObject
 * still exists, the module defines nothing: it is then an empty module, kept so
 * that every wheel of levelcare is built for one Python version.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#if PY_VERSION_HEX >= 0x030D0000
PyAPI_FUNC(PyObject *) PyEval_CallObject(PyObject *callable, PyObject *args);

PyObject *
PyEval_CallObject(PyObject *callable, PyObject *args)
{
    return PyObject_CallObject(callable, args);
}
#define LEVELCARE_PROVIDES_PYEVAL_CALLOBJECT 1
#else
#define LEVELCARE_PROVIDES_PYEVAL_CALLOBJECT 0
#endif

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    "levelcare._pyeval_compat",
    "PyEval_CallObject for durable-rules on Python 3.13 and later.",
    -1,
    NULL,
};

PyMODINIT_FUNC
PyInit__pyeval_compat(void)
{
    PyObject *self = PyModule_Create(&module);
    if (self == NULL) {
        return NULL;
    }
    if (PyModule_AddIntConstant(self, "PROVIDES_PYEVAL_CALLOBJECT", LEVELCARE_PROVIDES_PYEVAL_CALLOBJECT) < 0) {
        Py_DECREF(self);
        return NULL;
    }
    return self;
}
