// C shim over the system zlib (zlib1g-dev): deflateInit2 and inflateInit2 are macros.
#ifndef MOONWIRE_CZLIB_SHIM_H
#define MOONWIRE_CZLIB_SHIM_H
#include <zlib.h>

static inline int mw_deflateInit2(z_streamp stream, int level, int windowBits, int memLevel) {
    return deflateInit2(stream, level, Z_DEFLATED, windowBits, memLevel, Z_DEFAULT_STRATEGY);
}

static inline int mw_inflateInit2(z_streamp stream, int windowBits) {
    return inflateInit2(stream, windowBits);
}
#endif
