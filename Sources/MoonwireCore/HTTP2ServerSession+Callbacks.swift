// nghttp2's callbacks into an HTTP2ServerSession: C function pointers that find the session
// through nghttp2's user data and turn what nghttp2 decoded into HTTP2SessionEvents. They run
// only inside `nghttp2_session_mem_recv` and `mem_send`, that is inside `receive` and
// `takeOutput`, which have swapped the caller's event array in.
import CNGHTTP2
import NIOCore

extension HTTP2ServerSession {
    static func installCallbacks(_ callbacks: OpaquePointer?) {
        nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks) { _, frame, user in
            HTTP2ServerSession.from(user).beginFieldBlock(frame!.pointee)
        }
        nghttp2_session_callbacks_set_on_header_callback(callbacks) { _, frame, name, nameCount, value, valueCount, _, user in
            HTTP2ServerSession.from(user).field(
                stream: frame!.pointee.hd.stream_id,
                name: UnsafeBufferPointer(start: name, count: nameCount),
                value: UnsafeBufferPointer(start: value, count: valueCount))
        }
        nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks) { _, frame, user in
            HTTP2ServerSession.from(user).frameReceived(frame!.pointee)
        }
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks) { _, _, stream, data, count, user in
            HTTP2ServerSession.from(user).content(stream: stream, UnsafeRawBufferPointer(start: data, count: count))
        }
        nghttp2_session_callbacks_set_on_stream_close_callback(callbacks) { _, stream, error, user in
            HTTP2ServerSession.from(user).streamClosed(stream, error: error)
        }
        nghttp2_session_callbacks_set_on_frame_send_callback(callbacks) { _, frame, user in
            HTTP2ServerSession.from(user).frameSent(frame!.pointee)
        }
        // No on_invalid_header_callback: without one nghttp2 resets the stream of any invalid
        // field, which then comes here as NGHTTP2_ERR_HTTP_HEADER.
        nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(callbacks) { _, frame, error, user in
            HTTP2ServerSession.from(user).invalidFrameReceived(frame!.pointee, error: error)
        }
    }

    static func from(_ user: UnsafeMutableRawPointer?) -> HTTP2ServerSession {
        Unmanaged<HTTP2ServerSession>.fromOpaque(user!).takeUnretainedValue()
    }

    private func beginFieldBlock(_ frame: nghttp2_frame) -> Int32 {
        guard frame.hd.type == UInt8(NGHTTP2_HEADERS.rawValue) else { return 0 }
        let isRequest = frame.headers.cat == NGHTTP2_HCAT_REQUEST
        if isRequest, openRequests >= Int(settings.maxConcurrentStreams) {
            // Over the announced limit, under nghttp2's backstop: this stream alone is refused,
            // and its fields are decoded (HPACK's state needs them) and dropped.
            fieldBlock = nil
            refusedStreams += 1
            nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), frame.hd.stream_id, NGHTTP2_REFUSED_STREAM.rawValue)
            collected.append(.streamRefused(stream: frame.hd.stream_id, firstOnConnection: refusedStreams == 1))
            return 0
        }
        fieldBlock = HTTP2RequestFieldBlock(stream: frame.hd.stream_id, isTrailers: !isRequest)
        return 0
    }

    private func field(stream: Int32, name: UnsafeBufferPointer<UInt8>, value: UnsafeBufferPointer<UInt8>) -> Int32 {
        guard fieldBlock?.stream == stream else { return 0 }
        fieldBlock!.append(name: name, value: value, limit: Int(settings.maxHeaderListSize))
        return 0
    }

    private func frameReceived(_ frame: nghttp2_frame) -> Int32 {
        let stream = frame.hd.stream_id
        let endStream = frame.hd.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
        switch UInt32(frame.hd.type) {
        case NGHTTP2_HEADERS.rawValue:
            guard let block = fieldBlock, block.stream == stream else { return 0 }
            fieldBlock = nil
            headerBlockReceived(block, endStream: endStream)
        case NGHTTP2_DATA.rawValue:
            if endStream, streams[stream] != nil { contentEnded(stream: stream) }
        case NGHTTP2_RST_STREAM.rawValue:
            if streams[stream] != nil {
                collected.append(.streamReset(stream: stream, error: frame.rst_stream.error_code))
            }
        case NGHTTP2_GOAWAY.rawValue:
            collected.append(.goAwayReceived(lastStream: frame.goaway.last_stream_id, error: frame.goaway.error_code))
        case NGHTTP2_PING.rawValue:
            if frame.hd.flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) != 0 { finishShutdown() }
        default:
            break
        }
        return 0
    }

    private func headerBlockReceived(_ block: HTTP2RequestFieldBlock, endStream: Bool) {
        if block.isTrailers {
            guard streams[block.stream] != nil else { return }
            guard !block.tooLarge else {
                // The handler has the head already, so not REFUSED_STREAM (which says nothing
                // was processed): the client went past what the server announced.
                nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), block.stream, NGHTTP2_ENHANCE_YOUR_CALM.rawValue)
                return
            }
            collected.append(.requestTrailers(stream: block.stream, block.fields))
            return
        }
        guard !block.tooLarge else {
            // RFC 9113 10.5.1: a server that will not handle a field block this large can
            // answer 431. The stream stays the session's: content that follows is dropped
            // and its window reopened in `content`, until `frameSent` stops the upload.
            var fields = HTTP2FieldList(capacity: 1)
            fields.appendPseudo(":status", "431")
            _ = fields.withNameValues { nghttp2_submit_response(session, block.stream, $0, $1, nil) }
            return
        }
        if block.protocol != nil, !connectProtocolAcknowledged {
            // RFC 8441 section 3: a client sends `:protocol` once it has the setting, which the
            // server knows by its ACK; nghttp2 takes it from the moment the setting is submitted.
            nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), block.stream, NGHTTP2_PROTOCOL_ERROR.rawValue)
            let reason = ":protocol before SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441 section 3)"
            return malformedRequest(stream: block.stream, reason: reason)
        }
        streams[block.stream] = HTTP2StreamOutbox()
        openRequests += 1
        collected.append(.requestHead(block.head(endStream: endStream)))
    }

    /// Request content arrives as slices of the input (nghttp2 hands out pointers into it);
    /// content of streams the caller does not know is consumed and dropped here.
    private func content(stream: Int32, _ bytes: UnsafeRawBufferPointer) -> Int32 {
        guard streams[stream] != nil else {
            nghttp2_session_consume(session, stream, bytes.count)
            return 0
        }
        let body: ByteBuffer
        if let input, let inputBase, let start = bytes.baseAddress, start >= inputBase,
            start + bytes.count <= inputBase + input.readableBytes
        {
            body = input.getSlice(at: input.readerIndex + (start - inputBase), length: bytes.count)!
        } else {
            body = ByteBuffer(bytes: bytes)
        }
        collected.append(.requestBody(stream: stream, body, end: false))
        return 0
    }

    /// END_STREAM on a DATA frame: marks the frame's last content event, or adds an empty one.
    private func contentEnded(stream: Int32) {
        if case .requestBody(stream, let body, end: false)? = collected.last {
            collected[collected.count - 1] = .requestBody(stream: stream, body, end: true)
        } else {
            collected.append(.requestBody(stream: stream, ByteBuffer(), end: true))
        }
    }

    /// nghttp2's HTTP messaging checks failed on a field block, and nghttp2 has queued
    /// RST_STREAM PROTOCOL_ERROR for its stream (RFC 9113 section 8.1.1). The other invalid
    /// frames are connection errors, reported when their GOAWAY is framed, or streams nghttp2
    /// refuses for its own limits.
    private func invalidFrameReceived(_ frame: nghttp2_frame, error: Int32) -> Int32 {
        switch error {
        case NGHTTP2_ERR_HTTP_HEADER.rawValue:
            malformedRequest(stream: frame.hd.stream_id, reason: "malformed field (RFC 9113 section 8.2)")
        case NGHTTP2_ERR_HTTP_MESSAGING.rawValue:
            malformedRequest(stream: frame.hd.stream_id, reason: "malformed header section (RFC 9113 section 8.3)")
        default:
            break
        }
        return 0
    }

    /// Reports a stream reset as malformed, up to `maxMalformedRequests` on the connection;
    /// the next one ends it (GOAWAY ENHANCE_YOUR_CALM).
    private func malformedRequest(stream: Int32, reason: String) {
        guard !failed else { return }
        malformedRequests += 1
        guard malformedRequests <= settings.maxMalformedRequests else {
            nghttp2_session_terminate_session(session, NGHTTP2_ENHANCE_YOUR_CALM.rawValue)
            return reportConnectionError(NGHTTP2_ENHANCE_YOUR_CALM.rawValue)
        }
        if streams[stream] != nil { protocolErrorResets.insert(stream) }
        collected.append(.malformedRequest(stream: stream, reason: reason))
    }

    private func streamClosed(_ stream: Int32, error: UInt32) -> Int32 {
        if fieldBlock?.stream == stream { fieldBlock = nil }
        if !protocolErrorResets.isEmpty { protocolErrorResets.remove(stream) }  // no hashing per request
        guard let outbox = streams.removeValue(forKey: stream) else { return 0 }
        if stream % 2 == 1 { openRequests -= 1 }
        outbox.drop()
        collected.append(.streamClosed(stream: stream, error: error))
        return 0
    }

    private func frameSent(_ frame: nghttp2_frame) -> Int32 {
        switch UInt32(frame.hd.type) {
        case NGHTTP2_GOAWAY.rawValue:
            // nghttp2 ends a broken connection by queueing a GOAWAY with an error code,
            // without telling its caller otherwise: the framing of that GOAWAY is the report.
            let error = frame.goaway.error_code
            if error != NGHTTP2_NO_ERROR.rawValue, error != submittedGoAwayError { reportConnectionError(error) }
        case NGHTTP2_RST_STREAM.rawValue:
            // Content that contradicts its content-length (too much, or END_STREAM too soon)
            // has nghttp2 reset the stream with no callback: the framing of that reset, on a
            // stream whose head was reported, is the report.
            let stream = frame.hd.stream_id
            if frame.rst_stream.error_code == NGHTTP2_PROTOCOL_ERROR.rawValue, streams[stream] != nil,
                protocolErrorResets.remove(stream) == nil
            {
                malformedRequest(stream: stream, reason: "content does not match content-length (RFC 9113 section 8.1.1)")
            }
        case NGHTTP2_HEADERS.rawValue:
            // The session's own 431 is complete while the client may still be uploading:
            // RFC 9113 8.1 lets the server stop it with RST_STREAM NO_ERROR.
            let stream = frame.hd.stream_id
            let ended = frame.hd.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
            if ended, streams[stream] == nil, nghttp2_session_get_stream_remote_close(session, stream) == 0 {
                nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), stream, NGHTTP2_NO_ERROR.rawValue)
            }
        default:
            break
        }
        return 0
    }
}
