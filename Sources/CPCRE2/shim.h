// C shim over the system PCRE2 (libpcre2-dev), 8-bit code units.
#ifndef MOONWIRE_CPCRE2_SHIM_H
#define MOONWIRE_CPCRE2_SHIM_H
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

static inline size_t mw_pcre2_unset(void) { return PCRE2_UNSET; }

/// A valid address for an empty subject, pattern or replacement: PCRE2 rejects a null
/// pointer even when the length is 0, and Swift's empty buffers have no base address.
static inline PCRE2_SPTR8 mw_pcre2_empty_string(void) {
    static const PCRE2_UCHAR8 empty = 0;
    return &empty;
}
#endif
