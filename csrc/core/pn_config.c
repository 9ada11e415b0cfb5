/*
 * pn_config.c — the settings table's defaults and choice names, for code
 * that builds a pn_config without the bridge (C tests, fuzz targets) and for
 * the bridge's own parsing.  Pure functions: any thread.
 */
#include "pn_config.h"

#include <string.h>

int pn_config_choice_index(const char *choices, const char *name, size_t len)
{
    int idx = 0;
    const char *p = choices;
    for (;;) {
        const char *end = strchr(p, '|');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == len && memcmp(p, name, len) == 0)
            return idx;
        if (end == NULL)
            return -1;
        p = end + 1;
        idx++;
    }
}

/* A default the table names among its own choices (the bridge checks that
 * at import); the first choice if it ever did not. */
static int default_choice(const char *choices, const char *def)
{
    int i = pn_config_choice_index(choices, def, strlen(def));
    return i < 0 ? 0 : i;
}

void pn_config_defaults(pn_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
#define PN_STR(name, def, group, help) cfg->name = def;
#define PN_INT(name, def, lo, hi, group, help) cfg->name = def;
#define PN_SIZE(name, def, lo, hi, group, help) cfg->name = def;
#define PN_FLOAT(name, def, lo, hi, group, help) cfg->name = def;
#define PN_BOOL(name, def, group, help) cfg->name = def;
#define PN_CHOICE(name, def, choices, group, help) cfg->name = default_choice(choices, def);
#include "pn_settings.def"
#undef PN_STR
#undef PN_INT
#undef PN_SIZE
#undef PN_FLOAT
#undef PN_BOOL
#undef PN_CHOICE
}
