// C shim over the system hiredis (libhiredis-dev): only its RESP reader and command
// formatter are used; Moonwire does the I/O on its own NIO channels.
#ifndef MOONWIRE_CHIREDIS_SHIM_H
#define MOONWIRE_CHIREDIS_SHIM_H
#include <hiredis/hiredis.h>

/// The reader's error text (redisReaderGetError is a macro).
static inline const char *mw_redis_reader_error(redisReader *reader) { return reader->errstr; }
#endif
