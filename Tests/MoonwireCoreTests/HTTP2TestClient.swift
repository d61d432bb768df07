// A real nghttp2 client session in memory, the peer of HTTP2ServerSession in its tests: it
// frames requests the way curl does and records what the server's frames did to it, so the
// tests exchange real frames without sockets and without hand-made mocks.
import CNGHTTP2
import NIOCore
import NIOHTTP1

@testable import MoonwireCore

/// What the client saw on one stream.
struct HTTP2ClientStream {
    /// Every header block received, in order: 1xx heads, the answer head, trailers.
    var headBlocks: [[(name: String, value: String)]] = []
    var body: [UInt8] = []
    var closedWith: UInt32?
    var resetWith: UInt32?
    /// Promised streams announced on this stream.
    var promised: [Int32] = []

    /// The final (non-1xx) status.
    var status: String? {
        headBlocks.lazy.compactMap { $0.first { $0.name == ":status" }?.value }.last { !$0.hasPrefix("1") }
    }
}

final class HTTP2TestClient {
    let session: OpaquePointer
    var streams: [Int32: HTTP2ClientStream] = [:]
    var goAway: (lastStream: Int32, error: UInt32)?
    /// The SETTINGS entries the server sent.
    var serverSettings: [Int32: UInt32] = [:]
    /// Request content not yet framed, by stream.
    var uploads: [Int32: [UInt8]] = [:]
    var uploadTrailers: [Int32: [(String, String)]] = [:]
    /// Uploads that wait for more after their bytes (the provider defers).
    var unendedUploads: Set<Int32> = []

    /// `manualWindow`: the client sends WINDOW_UPDATE only when the test calls `consume`.
    init(manualWindow: Bool = false, peerMaxConcurrentStreams: UInt32? = nil, settings: [nghttp2_settings_entry] = []) {
        var callbacks: OpaquePointer?
        nghttp2_session_callbacks_new(&callbacks)
        defer { nghttp2_session_callbacks_del(callbacks) }
        nghttp2_session_callbacks_set_on_header_callback(callbacks) { _, frame, name, nameCount, value, valueCount, _, user in
            let me = HTTP2TestClient.client(user)
            let frame = frame!.pointee
            let isPromise = frame.hd.type == UInt8(NGHTTP2_PUSH_PROMISE.rawValue)
            let stream = isPromise ? frame.push_promise.promised_stream_id : frame.hd.stream_id
            let field = (
                String(decoding: UnsafeBufferPointer(start: name, count: nameCount), as: UTF8.self),
                String(decoding: UnsafeBufferPointer(start: value, count: valueCount), as: UTF8.self)
            )
            let last = me.streams[stream, default: HTTP2ClientStream()].headBlocks.count - 1
            me.streams[stream]!.headBlocks[last].append(field)
            return 0
        }
        nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks) { _, frame, user in
            let me = HTTP2TestClient.client(user)
            let frame = frame!.pointee
            if frame.hd.type == UInt8(NGHTTP2_PUSH_PROMISE.rawValue) {
                me.streams[frame.hd.stream_id, default: HTTP2ClientStream()].promised.append(frame.push_promise.promised_stream_id)
                me.streams[frame.push_promise.promised_stream_id, default: HTTP2ClientStream()].headBlocks.append([])
            } else {
                me.streams[frame.hd.stream_id, default: HTTP2ClientStream()].headBlocks.append([])
            }
            return 0
        }
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks) { _, _, stream, data, count, user in
            HTTP2TestClient.client(user).streams[stream, default: HTTP2ClientStream()].body
                .append(contentsOf: UnsafeBufferPointer(start: data, count: count))
            return 0
        }
        nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks) { _, frame, user in
            let me = HTTP2TestClient.client(user)
            let frame = frame!.pointee
            switch UInt32(frame.hd.type) {
            case NGHTTP2_RST_STREAM.rawValue:
                me.streams[frame.hd.stream_id, default: HTTP2ClientStream()].resetWith = frame.rst_stream.error_code
            case NGHTTP2_GOAWAY.rawValue:
                me.goAway = (frame.goaway.last_stream_id, frame.goaway.error_code)
            case NGHTTP2_SETTINGS.rawValue where frame.hd.flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) == 0:
                for index in 0..<frame.settings.niv {
                    let entry = frame.settings.iv[index]
                    me.serverSettings[entry.settings_id] = entry.value
                }
            default:
                break
            }
            return 0
        }
        nghttp2_session_callbacks_set_on_stream_close_callback(callbacks) { _, stream, error, user in
            HTTP2TestClient.client(user).streams[stream, default: HTTP2ClientStream()].closedWith = error
            return 0
        }
        var option: OpaquePointer?
        nghttp2_option_new(&option)
        defer { nghttp2_option_del(option) }
        if manualWindow { nghttp2_option_set_no_auto_window_update(option, 1) }
        if let peerMaxConcurrentStreams { nghttp2_option_set_peer_max_concurrent_streams(option, peerMaxConcurrentStreams) }
        var session: OpaquePointer?
        nghttp2_session_client_new2(&session, callbacks, nil, option)
        self.session = session!
        nghttp2_session_set_user_data(self.session, Unmanaged.passUnretained(self).toOpaque())
        var entries = settings
        nghttp2_submit_settings(self.session, UInt8(NGHTTP2_FLAG_NONE.rawValue), &entries, entries.count)
    }

    deinit { nghttp2_session_del(session) }

    private static func client(_ user: UnsafeMutableRawPointer?) -> HTTP2TestClient {
        Unmanaged<HTTP2TestClient>.fromOpaque(user!).takeUnretainedValue()
    }

    /// Submits a request; `body` nil sends END_STREAM with the head, `trailers` end the
    /// body instead of its last DATA frame.
    @discardableResult
    func request(
        _ fields: [(String, String)], body: [UInt8]? = nil, trailers: [(String, String)]? = nil, endBody: Bool = true
    ) -> Int32 {
        var provider = nghttp2_data_provider(source: nghttp2_data_source(ptr: nil), read_callback: Self.readUpload)
        let stream = Self.withNameValues(fields) { nameValues, count in
            body == nil
                ? nghttp2_submit_request(session, nil, nameValues, count, nil, nil)
                : nghttp2_submit_request(session, nil, nameValues, count, &provider, nil)
        }
        precondition(stream > 0, "nghttp2_submit_request: \(stream)")
        if let body { uploads[stream] = body }
        if let trailers { uploadTrailers[stream] = trailers }
        if !endBody { unendedUploads.insert(stream) }
        return stream
    }

    /// Calls `body` with an nghttp2_nv array of `fields`, names as given: nghttp2 copies
    /// (and lowercases) them during the call.
    private static func withNameValues<Result>(
        _ fields: [(String, String)], _ body: (UnsafePointer<nghttp2_nv>, Int) -> Result
    ) -> Result {
        let copies = fields.flatMap { [$0.0, $0.1] }.map { text in
            let copy = UnsafeMutablePointer<UInt8>.allocate(capacity: max(text.utf8.count, 1))
            _ = UnsafeMutableBufferPointer(start: copy, count: text.utf8.count).initialize(from: text.utf8)
            return (copy, text.utf8.count)
        }
        defer { copies.forEach { $0.0.deallocate() } }
        let nameValues = stride(from: 0, to: copies.count, by: 2).map { index in
            nghttp2_nv(
                name: copies[index].0, value: copies[index + 1].0,
                namelen: copies[index].1, valuelen: copies[index + 1].1, flags: 0)
        }
        return nameValues.withUnsafeBufferPointer { body($0.baseAddress!, $0.count) }
    }

    private static let readUpload: nghttp2_data_source_read_callback = { session, stream, buffer, length, flags, _, user in
        let me = HTTP2TestClient.client(user)
        let pending = me.uploads[stream] ?? []
        let count = min(length, pending.count)
        pending.withUnsafeBufferPointer { buffer!.update(from: $0.baseAddress!, count: count) }
        me.uploads[stream] = Array(pending.dropFirst(count))
        guard count == pending.count else { return count }
        if me.unendedUploads.contains(stream) { return count > 0 ? count : Int(NGHTTP2_ERR_DEFERRED.rawValue) }
        flags!.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue
        if let trailers = me.uploadTrailers.removeValue(forKey: stream) {
            flags!.pointee |= NGHTTP2_DATA_FLAG_NO_END_STREAM.rawValue
            HTTP2TestClient.withNameValues(trailers) { _ = nghttp2_submit_trailer(session, stream, $0, $1) }
        }
        return count
    }

    /// The bytes the client has to send.
    func output() -> ByteBuffer {
        var buffer = ByteBuffer()
        while true {
            var data: UnsafePointer<UInt8>?
            let count = nghttp2_session_mem_send(session, &data)
            guard count > 0 else { return buffer }
            buffer.writeBytes(UnsafeRawBufferPointer(start: data, count: count))
        }
    }

    func receive(_ bytes: ByteBuffer) {
        let result = bytes.withUnsafeReadableBytes {
            nghttp2_session_mem_recv(session, $0.bindMemory(to: UInt8.self).baseAddress, $0.count)
        }
        precondition(result == bytes.readableBytes, "client mem_recv: \(result)")
    }

    /// Gives `bytes` of the stream's content back to flow control (with `manualWindow`).
    func consume(stream: Int32, bytes: Int) {
        nghttp2_session_consume(session, stream, bytes)
    }
}

/// Exchanges bytes between `client` and `server` until neither has anything to send;
/// returns the server's events.
@discardableResult
func pump(_ client: HTTP2TestClient, _ server: HTTP2ServerSession, rounds: Int = 100) -> [HTTP2SessionEvent] {
    var events: [HTTP2SessionEvent] = []
    for _ in 0..<rounds {
        let request = client.output()
        server.receive(request, into: &events)
        var answer = ByteBuffer()
        server.takeOutput(into: &answer, events: &events)
        client.receive(answer)
        if request.readableBytes == 0 && answer.readableBytes == 0 { break }
    }
    return events
}
