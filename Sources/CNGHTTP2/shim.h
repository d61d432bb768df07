// C shim over the system nghttp2 (libnghttp2-dev): only its session (framing, HPACK, flow
// control and the RFC 9113 checks) is used, fed from memory; Moonwire does the I/O on its own
// NIO channels.
#ifndef MOONWIRE_CNGHTTP2_SHIM_H
#define MOONWIRE_CNGHTTP2_SHIM_H
#include <nghttp2/nghttp2.h>
#endif
