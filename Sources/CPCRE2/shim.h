// C shim over the system PCRE2 (libpcre2-dev), 8-bit code units.
#ifndef MOONWIRE_CPCRE2_SHIM_H
#define MOONWIRE_CPCRE2_SHIM_H
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

static inline size_t mw_pcre2_unset(void) { return PCRE2_UNSET; }
#endif
