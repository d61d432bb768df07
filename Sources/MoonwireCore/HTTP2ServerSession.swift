// The server side of one HTTP/2 connection as a state machine over bytes: bytes in
// (`receive`), events out, answers submitted, bytes out (`takeOutput`). It wraps an nghttp2
// server session and owns no socket, no NIO channel and no timer, so the connection's NIO
// handler stays thin and tests drive it from memory with a real nghttp2 client.
//
// Why libnghttp2 rather than swift-nio-http2: nio-http2 gives every stream a child channel
// with its own pipeline, and a request then costs about 175,000 instructions; nghttp2's whole
// path (framing, HPACK, flow control, the RFC 9113 checks) costs about 13,000
// (docs/benchmarks.md, "HTTP/2: where the instructions go"). nghttp2 is also what nginx's
// peers and curl use, so its interpretation of the RFC is the one clients are tested against.
//
// Why sans-I/O: nghttp2's memory API (`nghttp2_session_mem_recv`/`mem_send`) already is one,
// and a state machine that returns what happened can be tested frame by frame without
// sockets, event loops or timing.
//
// nghttp2's HTTP messaging checks stay ON (no `nghttp2_option_set_no_http_messaging`): it
// enforces RFC 9113 8.2 and 8.3 on every request (lowercase names, no connection-specific
// fields, pseudo-header rules, `:protocol` only when RFC 8441 is enabled, content-length
// against the DATA received) and resets the offending stream itself with PROTOCOL_ERROR; the
// session reports each such stream once (`malformedRequest`), so it is logged as on nio.
// What it does not enforce, SETTINGS_MAX_HEADER_LIST_SIZE, this class does.
//
// Request-body flow control is the caller's (`nghttp2_option_set_no_auto_window_update`):
// a stream's window reopens only when the caller `consume`s the bytes, so a handler that
// reads slowly pushes back on the client instead of letting the session buffer for it.
import CNGHTTP2
import NIOCore
import NIOHTTP1

/// One HTTP/2 server connection's protocol state, driven from memory. nghttp2's HTTP
/// messaging checks are on: a request that breaks RFC 9113 8.2 or 8.3 is reset by nghttp2
/// and reported as `malformedRequest`.
final class HTTP2ServerSession {
    /// What the server announces in its SETTINGS, and the limits it enforces.
    struct Settings {
        /// SETTINGS_MAX_CONCURRENT_STREAMS; beyond it the session refuses new streams one by
        /// one (REFUSED_STREAM, `streamRefused`). 128 is nginx's `http2_max_concurrent_streams`.
        var maxConcurrentStreams: UInt32 = 128
        /// SETTINGS_HEADER_TABLE_SIZE: the HPACK dynamic table the client may use for what it
        /// sends.
        var headerTableSize: UInt32 = 4096
        /// SETTINGS_INITIAL_WINDOW_SIZE: the request-body bytes a stream may send before
        /// the caller consumes some. The connection's window is this times
        /// `maxConcurrentStreams` (capped at 2^31-1), so one slow stream never blocks the
        /// others' bodies. At most 2^31-1 (`init` traps beyond).
        var initialWindowSize: UInt32 = 65_535
        /// SETTINGS_MAX_HEADER_LIST_SIZE (RFC 7541 sizes: name + value + 32 per field). A
        /// larger request head is answered 431 by the session and never reported. 16 KiB
        /// is nginx's `http2_max_header_size`.
        var maxHeaderListSize: UInt32 = 16_384
        /// SETTINGS_MAX_FRAME_SIZE: the largest frame the client may send, 16,384 to
        /// 16,777,215 (RFC 9113 6.5.2; outside that range `init` traps).
        var maxFrameSize: UInt32 = 16_384
        /// SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441): extended CONNECT, for WebSocket
        /// over HTTP/2. Without it nghttp2 refuses a request carrying `:protocol`.
        var enableConnectProtocol = false
        /// The malformed requests (`malformedRequest`) a connection may send; the next one ends
        /// it with GOAWAY ENHANCE_YOUR_CALM. 200 is where nio-http2 ends a connection for its
        /// stream errors (GlitchesMonitor), so a flood of them is logged no more than on nio.
        var maxMalformedRequests = 200
    }

    let settings: Settings
    /// The nghttp2_session; its user data is this object, unretained.
    let session: OpaquePointer
    /// Where callbacks append: the caller's array, swapped in for one receive or takeOutput.
    var collected: [HTTP2SessionEvent] = []
    /// Streams whose head was reported or that were promised: their answers' state.
    var streams: [Int32: HTTP2StreamOutbox] = [:]
    /// Reported streams whose RST_STREAM PROTOCOL_ERROR is no news when it is framed: the
    /// caller's reset, or one already reported as `malformedRequest`. At most `streams`.
    var protocolErrorResets: Set<Int32> = []
    /// The header block nghttp2 is decoding (only one is open at a time on a connection).
    var fieldBlock: HTTP2RequestFieldBlock?
    /// The bytes of the current `receive`, so request content is sliced, not copied.
    var input: ByteBuffer?
    var inputBase: UnsafeRawPointer?
    /// A connection error was reported: no more input is read and none is reported again.
    var failed = false
    /// The error code of the GOAWAY the caller asked for: framing it is no news to the caller.
    var submittedGoAwayError: UInt32?
    /// The graceful stop (HTTP2ServerSession+Shutdown.swift).
    var shutdown = Shutdown.none
    /// The client's streams whose head was reported and that are not closed, and how many
    /// were refused for going past `maxConcurrentStreams`, and how many were malformed.
    var openRequests = 0, refusedStreams = 0, malformedRequests = 0
    /// The server's first SETTINGS still has to be framed (see `advertiseStreamLimit`).
    private var firstSettingsPending = true

    init(settings: Settings = Settings()) {
        self.settings = settings
        var callbacks: OpaquePointer?
        precondition(nghttp2_session_callbacks_new(&callbacks) == 0, "nghttp2: out of memory")
        defer { nghttp2_session_callbacks_del(callbacks) }
        Self.installCallbacks(callbacks)
        var option: OpaquePointer?
        precondition(nghttp2_option_new(&option) == 0, "nghttp2: out of memory")
        defer { nghttp2_option_del(option) }
        nghttp2_option_set_no_auto_window_update(option, 1)
        var session: OpaquePointer?
        precondition(nghttp2_session_server_new2(&session, callbacks, nil, option) == 0, "nghttp2: out of memory")
        self.session = session!
        nghttp2_session_set_user_data(self.session, Unmanaged.passUnretained(self).toOpaque())
        submitSettings()
    }

    deinit {
        nghttp2_session_del(session)
    }

    private func submitSettings() {
        func entry(_ id: nghttp2_settings_id, _ value: UInt32) -> nghttp2_settings_entry {
            nghttp2_settings_entry(settings_id: Int32(id.rawValue), value: value)
        }
        // nghttp2 takes a stream over its limit as a connection error once the client has
        // acknowledged the limit: every stream of the connection would be lost for one too
        // many. It is given a higher limit as a backstop against floods, the client is told
        // the configured one (`advertiseStreamLimit`), and the session refuses the streams in
        // between one by one (RFC 9113 section 5.1.2), as HTTP2StreamAdmission does for nio.
        let backstop = UInt32(HTTP2StreamAdmission.backstop(for: Int(settings.maxConcurrentStreams)))
        var entries = [
            entry(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, backstop),
            entry(NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, settings.headerTableSize),
            entry(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, settings.initialWindowSize),
            entry(NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, settings.maxHeaderListSize),
            entry(NGHTTP2_SETTINGS_MAX_FRAME_SIZE, settings.maxFrameSize),
            // RFC 9218: RFC 7540's priority tree is deprecated; without it nghttp2 also
            // keeps no closed streams around for it.
            entry(NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1),
        ]
        if settings.enableConnectProtocol {
            entries.append(entry(NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL, 1))
        }
        let none = UInt8(NGHTTP2_FLAG_NONE.rawValue)
        precondition(nghttp2_submit_settings(session, none, &entries, entries.count) == 0, "nghttp2: bad SETTINGS")
        let window = min(UInt64(settings.initialWindowSize) * UInt64(settings.maxConcurrentStreams), UInt64(Int32.max))
        nghttp2_session_set_local_window_size(session, none, 0, Int32(max(window, 65_535)))
    }

    // MARK: Bytes in, bytes out

    /// Feeds bytes read from the connection; appends what they caused to `events`
    /// (appending to the caller's array, whose capacity is reused, instead of returning a
    /// new one per read).
    func receive(_ bytes: ByteBuffer, into events: inout [HTTP2SessionEvent]) {
        guard !failed else { return }
        swap(&collected, &events)
        defer { swap(&collected, &events) }
        let result = bytes.withUnsafeReadableBytes { raw in
            input = bytes
            inputBase = raw.baseAddress
            defer {
                input = nil
                inputBase = nil
            }
            return nghttp2_session_mem_recv(session, raw.bindMemory(to: UInt8.self).baseAddress, raw.count)
        }
        if result < 0 {
            fail(libraryError: Int32(result))
        }
    }

    /// Appends every byte the session has to send to `buffer`, as far as the client's flow
    /// control windows allow; appends `sendQueueDrained` (and a connection error nghttp2
    /// found while reading, once its GOAWAY is framed) to `events`.
    /// Stops once `buffer` holds `limit` bytes or more, and then returns true: more may wait.
    @discardableResult
    func takeOutput(into buffer: inout ByteBuffer, events: inout [HTTP2SessionEvent], limit: Int = .max) -> Bool {
        swap(&collected, &events)
        defer { swap(&collected, &events) }
        let start = buffer.writerIndex
        defer { if firstSettingsPending, buffer.writerIndex > start { advertiseStreamLimit(in: &buffer, at: start) } }
        while buffer.readableBytes < limit {
            var data: UnsafePointer<UInt8>?
            let count = nghttp2_session_mem_send(session, &data)
            if count < 0 {
                fail(libraryError: Int32(count))
                return false
            }
            guard count > 0, let data else { return false }
            buffer.writeBytes(UnsafeRawBufferPointer(start: data, count: count))
        }
        return true
    }

    /// Writes the configured stream limit over the backstop in the server's first SETTINGS
    /// frame, the first bytes the session ever frames: 9 bytes of frame header, then entries of
    /// a 2-byte identifier and a 4-byte value.
    private func advertiseStreamLimit(in buffer: inout ByteBuffer, at start: Int) {
        firstSettingsPending = false
        guard let length = buffer.getInteger(at: start, as: UInt32.self).map({ $0 >> 8 }),
            buffer.getInteger(at: start + 3, as: UInt8.self) == UInt8(NGHTTP2_SETTINGS.rawValue)
        else { return }
        var entry = start + 9
        while entry + 6 <= start + 9 + Int(length) {
            if buffer.getInteger(at: entry, as: UInt16.self) == UInt16(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS.rawValue) {
                buffer.setInteger(settings.maxConcurrentStreams, at: entry + 2)
            }
            entry += 6
        }
    }

    /// The connection should still be read. When neither this nor `wantsWrite` holds, the
    /// session is done (GOAWAY exchanged and streams finished, or a fatal error framed):
    /// close the connection.
    var wantsRead: Bool { nghttp2_session_want_read(session) != 0 }

    /// The session has bytes to send (flow control permitting).
    var wantsWrite: Bool { nghttp2_session_want_write(session) != 0 }

    /// Answer bytes queued on `stream` with `sendData` and not yet framed: a streaming
    /// handler waits while this is above its bound.
    func queuedBytes(stream: Int32) -> Int {
        streams[stream]?.queuedBytes ?? 0
    }

    /// Reports a fatal error of nghttp2 itself (bad preface, flooding, out of memory) and
    /// queues the GOAWAY that ends the connection.
    private func fail(libraryError: Int32) {
        let code: nghttp2_error_code
        switch libraryError {
        case NGHTTP2_ERR_BAD_CLIENT_MAGIC.rawValue: code = NGHTTP2_PROTOCOL_ERROR
        case NGHTTP2_ERR_FLOODED.rawValue: code = NGHTTP2_ENHANCE_YOUR_CALM
        default: code = NGHTTP2_INTERNAL_ERROR
        }
        nghttp2_session_terminate_session(session, code.rawValue)
        reportConnectionError(code.rawValue)
    }

    func reportConnectionError(_ code: UInt32) {
        guard !failed else { return }
        failed = true
        collected.append(.connectionError(error: code))
    }
}
