/* placeholder: being written */
#include "pn_bridge.h"
int pn_asgi_init(PyObject *module, pn_modstate *st) { (void)module; (void)st; return 0; }
