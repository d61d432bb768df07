// What the server sends on an HTTP2ServerSession: answer heads, content, trailers, 1xx,
// resets, GOAWAY and push promises. Each call only queues in nghttp2; `takeOutput` frames.
// Content is pulled by nghttp2 through a data provider whose read callback copies from the
// stream's HTTP2StreamOutbox and answers NGHTTP2_ERR_DEFERRED while the handler has given
// nothing more, so a streaming answer costs no polling.
import CNGHTTP2
import NIOCore
import NIOHTTP1

extension HTTP2ServerSession {
    /// Submits the answer head of `stream` (HEADERS). With `endStream` the answer has no
    /// content; otherwise content follows with `sendData` and ends with it or `sendTrailers`.
    /// Connection-specific fields are dropped (RFC 9113 8.2.2); nghttp2 lowercases names.
    /// Returns false when the stream is unknown, closed or already answered.
    /// `serverFields`, when given, replace the handler's fields of their names.
    @discardableResult
    func respond(
        stream: Int32, status: Int, headers: HTTPHeaders, fields serverFields: ServerOwnedFields? = nil, endStream: Bool
    ) -> Bool {
        guard let outbox = streams[stream], !outbox.responded else { return false }
        var fields = HTTP2FieldList(capacity: headers.count + 4)
        fields.appendPseudo(":status", String(status))
        if let serverFields {
            fields.appendRegular(headers, except: serverFields)
            fields.append(serverFields)
        } else {
            fields.appendRegular(headers)
        }
        var provider = nghttp2_data_provider(source: nghttp2_data_source(ptr: nil), read_callback: Self.readContent)
        let result = fields.withNameValues { nameValues, count in
            endStream
                ? nghttp2_submit_response(session, stream, nameValues, count, nil)
                : nghttp2_submit_response(session, stream, nameValues, count, &provider)
        }
        guard result == 0 else { return false }
        outbox.responded = true
        outbox.streaming = !endStream
        outbox.ended = endStream
        return true
    }

    /// Queues answer content on `stream`; `endStream` ends the answer. nghttp2 frames it as
    /// the client's windows allow; `queuedBytes(stream:)` tells what is still waiting and
    /// `sendQueueDrained` when it has all been framed. Returns false when the stream does not
    /// take content (unknown, closed, not answered with content to follow, or ended).
    @discardableResult
    func sendData(stream: Int32, _ bytes: ByteBuffer, endStream: Bool) -> Bool {
        guard let outbox = streams[stream], outbox.streaming, !outbox.ended else { return false }
        if bytes.readableBytes > 0 {
            outbox.chunks.append(bytes)
            outbox.queuedBytes += bytes.readableBytes
        }
        outbox.ended = endStream
        resume(stream, outbox)
        return true
    }

    /// Ends the answer of `stream` with a trailer section, after the queued content.
    @discardableResult
    func sendTrailers(stream: Int32, _ trailers: HTTPHeaders) -> Bool {
        guard let outbox = streams[stream], outbox.streaming, !outbox.ended else { return false }
        outbox.trailers = trailers
        outbox.ended = true
        resume(stream, outbox)
        return true
    }

    /// Submits an informational (1xx) head on `stream`, before its answer.
    @discardableResult
    func informational(stream: Int32, status: Int, headers: HTTPHeaders) -> Bool {
        guard (100..<200).contains(status), let outbox = streams[stream], !outbox.responded else { return false }
        var fields = HTTP2FieldList(capacity: headers.count + 1)
        fields.appendPseudo(":status", String(status))
        fields.appendRegular(headers)
        let none = UInt8(NGHTTP2_FLAG_NONE.rawValue)
        return fields.withNameValues { nghttp2_submit_headers(session, none, stream, nil, $0, $1, nil) } >= 0
    }

    /// Resets `stream` (RST_STREAM with the HTTP/2 error code `error`); queued content is
    /// dropped and the stream's close is reported once the reset is framed.
    func reset(stream: Int32, error: UInt32) {
        streams[stream]?.drop()
        if error == NGHTTP2_PROTOCOL_ERROR.rawValue, streams[stream] != nil { protocolErrorResets.insert(stream) }
        nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), stream, error)
    }

    /// Submits GOAWAY with the last stream the session has processed: streams already open
    /// finish, new ones are refused. Once they are done `wantsRead` and `wantsWrite` turn
    /// false.
    func goAway(error: UInt32) {
        submittedGoAwayError = error
        let lastStream = nghttp2_session_get_last_proc_stream_id(session)
        nghttp2_submit_goaway(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), lastStream, error, nil, 0)
    }

    /// Promises a pushed request on `stream` (PUSH_PROMISE) and returns the promised stream,
    /// which the caller answers with `respond` like any other; nil when the client disabled
    /// push (SETTINGS_ENABLE_PUSH 0) or the stream cannot carry a promise.
    func push(
        onStream stream: Int32, method: String, path: String, authority: String, scheme: String,
        headers: HTTPHeaders
    ) -> Int32? {
        guard streams[stream] != nil,
            nghttp2_session_get_remote_settings(session, NGHTTP2_SETTINGS_ENABLE_PUSH) == 1
        else { return nil }
        var fields = HTTP2FieldList(capacity: headers.count + 4)
        fields.appendPseudo(":method", method)
        fields.appendPseudo(":scheme", scheme)
        fields.appendPseudo(":authority", authority)
        fields.appendPseudo(":path", path)
        fields.appendRegular(headers)
        let none = UInt8(NGHTTP2_FLAG_NONE.rawValue)
        let promised = fields.withNameValues { nghttp2_submit_push_promise(session, none, stream, $0, $1, nil) }
        guard promised > 0 else { return nil }
        streams[promised] = HTTP2StreamOutbox()
        return promised
    }

    /// Hands `bytes` of request content of `stream` back to flow control: the client may
    /// send that much more, on the stream and on the connection. Every byte of every
    /// `requestBody` event must come back this way, even after the stream closed.
    func consume(stream: Int32, bytes: Int) {
        guard bytes > 0 else { return }
        nghttp2_session_consume(session, stream, bytes)
    }

    private func resume(_ stream: Int32, _ outbox: HTTP2StreamOutbox) {
        guard outbox.deferred else { return }
        outbox.deferred = false
        nghttp2_session_resume_data(session, stream)
    }

    /// The data provider's read callback: nghttp2 wants up to `length` bytes for `stream`.
    private static let readContent: nghttp2_data_source_read_callback = { _, stream, buffer, length, flags, _, user in
        let destination = UnsafeMutableRawBufferPointer(start: buffer, count: length)
        return HTTP2ServerSession.from(user).readContent(stream: stream, into: destination, flags: flags!)
    }

    private func readContent(
        stream: Int32, into buffer: UnsafeMutableRawBufferPointer, flags: UnsafeMutablePointer<UInt32>
    ) -> Int {
        guard let outbox = streams[stream] else { return Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue) }
        let written = outbox.take(into: buffer)
        guard outbox.chunks.isEmpty else { return written }
        if outbox.ended {
            flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue
            if let trailers = outbox.trailers {
                outbox.trailers = nil
                flags.pointee |= NGHTTP2_DATA_FLAG_NO_END_STREAM.rawValue
                var fields = HTTP2FieldList(capacity: trailers.count)
                fields.appendRegular(trailers)
                _ = fields.withNameValues { nghttp2_submit_trailer(session, stream, $0, $1) }
            }
        } else if written == 0 {
            outbox.deferred = true
            return Int(NGHTTP2_ERR_DEFERRED.rawValue)
        }
        collected.append(.sendQueueDrained(stream: stream))
        return written
    }
}
