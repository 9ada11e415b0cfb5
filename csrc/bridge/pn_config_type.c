/* placeholder: being written */
#include "pn_bridge.h"
int pn_config_type_init(PyObject *module, pn_modstate *st) { (void)module; (void)st; return 0; }
const pn_config *pn_config_struct(pn_modstate *st, PyObject *obj) { (void)st; (void)obj; PyErr_SetString(PyExc_TypeError, "x"); return NULL; }
