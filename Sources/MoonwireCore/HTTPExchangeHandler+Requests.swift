// The request side of an exchange handler: a head checked against the limits (the header
// block on HTTP/2, a declared body), `100 Continue` when it is expected, its body gathered or
// streamed to the delegate, and the request built and handed on. What the delegate answers is
// written by HTTPExchangeHandler+Answers.swift.
import NIOCore
import NIOHTTP1

extension HTTPExchangeHandler {
    /// A request's head: checked, then dispatched at once when its body is streamed, or kept by
    /// the state machine until its body is whole.
    func receiveHead(_ head: consuming HTTPRequestHead, link: ExchangeLink) {
        if draining { heardWhileDraining = true }
        timeouts.headReceived()
        if !upgradeSettled, let upgrade {
            // A request reached us, so the upgrade handler has decided against upgrading and
            // left: NIO's encoder would only add a hop to every read and flush, and the
            // decoder can hand its parts straight to us.
            if let encoder = upgrade.encoder {
                upgrade.encoder = nil
                if case .pipeline(let context) = link { context.pipeline.syncOperations.removeHandler(encoder, promise: nil) }
                upgrade.decoder.recipient = self
            }
            // This request asked for an upgrade that did not happen: HTTP/1.1 goes on.
            if upgrade.decoder.isPaused { upgrade.decoder.upgradeDeclined() }
        }
        // HTTP/1.1 heads were measured by the decoder, which refuses larger ones.
        if !isHTTP1, Self.headerBytes(head) > environment.limits.maxHeaderSize {
            fail(431, "header block exceeds \(environment.limits.maxHeaderSize) bytes", link: link)
            return
        }
        var declaredLength: Int?, bodyless = false
        framedKeepAlive = headFraming?.keepAlive
        if let framing = headFraming {
            if case .length(let length) = framing.body { declaredLength = length }
            if case .none = framing.body { bodyless = true }
        } else {
            declaredLength = head.headers.first(name: "content-length").flatMap(Int.init)
        }
        let delegate = environment.delegate
        let streamLimit =
            headFraming?.declaresBody == false && !delegate.streamsBodylessRequests ? nil : delegate.streamedBodyLimit(for: head)
        let limit = streamLimit ?? environment.limits.maxBodySize
        if let length = declaredLength, length > limit {
            fail(413, "request body of \(length) bytes exceeds \(limit)", link: link)
            return
        }
        // Nothing to continue without a body (RFC 9110 section 10.1.1).
        if head.version != .http1_0, !bodyless,
            head.headers.first(name: "expect")?.lowercased() == "100-continue"
        {
            writer.informational(.continue, version: head.version, link: link)
        }
        if let streamLimit { return streamBody(of: head, limit: streamLimit, link: link) }
        // Most requests have no body: they get the shared empty buffer, not an allocation.
        let body = declaredLength.map { writer.allocator.buffer(capacity: min($0, 64 * 1024)) } ?? ByteBuffer()
        machine.headAccepted(head, body: body)
    }

    /// Hands a request to the delegate at its head, its body to follow through a stream that
    /// holds reads back while the delegate leaves too much of it untaken.
    private func streamBody(of head: HTTPRequestHead, limit: Int, link: ExchangeLink) {
        let stream = RequestBodyStream(eventLoop: link.eventLoop, limit: limit)
        let loopBoundSelf = NIOLoopBound(self, eventLoop: link.eventLoop)
        stream.drained = {
            let handler = loopBoundSelf.value
            handler.machine.streamedBodyFull(false)
            handler.timeouts.streamHeld(false)
            if let link = handler.link, handler.machine.takeHeldRead() { link.read() }
        }
        bodyStream = stream
        machine.headStreamed(limit: limit)
        // The body comes at the pace the delegate takes it: only the silence of a client that
        // is asked for bytes is timed.
        timeouts.bodyStreamed()
        dispatch(head, body: ByteBuffer(), bodyStream: stream, link: link)
    }

    /// The size of a head as HTTP/1.1 would carry it, for the same limit on HTTP/2.
    private static func headerBytes(_ head: HTTPRequestHead) -> Int {
        head.uri.utf8.count + head.headers.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 4 }
    }

    func dispatch(
        _ head: consuming HTTPRequestHead, body: consuming ByteBuffer, bodyStream: RequestBodyStream? = nil, link: ExchangeLink
    ) {
        // The head's fields read once each: every read goes through its storage.
        let method = head.method, httpVersion = head.version
        let version = httpVersion.major == 2 ? "2" : httpVersion == .http1_0 ? "1.0" : "1.1"
        guard
            let request = HTTPRequest(
                method: method.rawValue, uri: head.uri, version: version, scheme: scheme,
                headers: head.headers, body: body, bodyStream: bodyStream, connection: connection)
        else {
            fail(400, "malformed request target: \(head.uri)", link: link)
            return
        }
        if bodyStream == nil { machine.requestDispatched() }
        if environment.accessLog != nil {
            logEntry = AccessLogEntry(
                remoteIP: connection.remoteIP, method: request.method, target: head.uri,
                version: "HTTP/\(httpVersion.major).\(httpVersion.minor)", referer: head.headers.first(name: "referer") ?? "",
                userAgent: head.headers.first(name: "user-agent") ?? "", started: .now())
        }
        if environment.metrics != nil { metricsEntry = RequestMetricsEntry(method: request.method, started: .now()) }
        // `case .HEAD`, not `==`, which compares the methods' raw strings.
        var headOnly = false
        if case .HEAD = method { headOnly = true }
        let exchange = Exchange(version: httpVersion, headOnly: headOnly, keepAlive: framedKeepAlive.take() ?? request.keepAlive)
        let responder = HTTPResponder(exchange: self, request: request, exchange)
        if !upgradeSettled, let upgrade {
            upgradeSettled = true
            switch upgrade.outcome {
            case .none:
                break
            case .declined:
                upgrade.outcome = .none
            case .refused(let response):
                upgrade.outcome = .none
                return responder.respond(response)
            }
        }
        if let answer = presetAnswer.take() { return responder.respond(answer) }
        if let push {
            push.promise(environment.delegate.pushLinks(for: request), for: request)
        }
        environment.delegate.handle(request, responder: responder)
    }

    /// What the writer must remember of a request to answer it.
    struct Exchange {
        var version: HTTPVersion
        var headOnly: Bool
        var keepAlive: Bool
    }
}
