// The answering half of an exchange handler: writes the delegate's answers (bytes, files,
// streams) and the protocol errors' status pages through the handler's response writer.
import NIOCore
import NIOHTTP1

extension HTTPExchangeHandler {
    func answer(_ answer: HTTPAnswer, to request: HTTPRequest, exchange: Exchange) {
        guard let link, machine.isAnswering else { return }
        let loop = link.eventLoop
        switch answer {
        case .response(let response):
            self.answer(response, to: request, exchange: exchange)
        case .stream(let stream, let status, let headers):
            startStream(stream, status: status, headers: headers, exchange)
        case .informational(let status, let headers):
            guard exchange.version != .http1_0 else { return }
            writer.informational(HTTPResponseStatus(statusCode: status), version: exchange.version, headers: headers, link: link)
        case .staticFile(let extraHeaders, let root):
            if let cached = environment.files.cachedAnswer(
                path: request.path, root: root, request: request.headers, headOnly: exchange.headOnly,
                extraHeaders: extraHeaders, cache: environment.fileCache)
            {
                return write(cached.response, exchange, fieldLines: cached.fieldLines.map(HeadFieldLines.serialized))
            }
            let future = environment.files.serve(
                path: request.path, root: root, request: request.headers, headOnly: exchange.headOnly,
                extraHeaders: extraHeaders, cache: environment.fileCache, on: loop)
            writeWhenReady(future, exchange)
        }
    }

    /// A complete response (`HTTPResponder.respond`), which comes straight here rather than
    /// wrapped in an `HTTPAnswer`: building and destroying one copies the response.
    func answer(_ response: HTTPResponse, to request: HTTPRequest, exchange: Exchange) {
        // The link is taken (and retained) only for a file, which needs its loop.
        guard link != nil, machine.isAnswering else { return }
        // One pattern per case rather than a switch over the body, which copied the whole body
        // (through its generic value witness, about 190 instructions per response).
        if case .bytes(let buffer) = response.body {
            var prepared = PreparedResponse(status: response.status, headers: response.headers, body: .bytes(buffer))
            ResponseCompression.apply(to: &prepared, request: request.headers)
            write(prepared, exchange)
        } else if case .file(let file) = response.body, let link {
            let future = environment.files.send(
                file: file, response: response, request: request.headers, headOnly: exchange.headOnly, on: link.eventLoop)
            writeWhenReady(future, exchange)
        }
    }

    /// A proxied answer whose fields go as HTTP/1.1 lines (`HTTPResponder.takesFieldLines`);
    /// their Content-Length is the one the framing heeds.
    func answer(status: Int, fieldLines: ProxyHeaders.ResponseFieldLines, body: ByteBuffer, exchange: Exchange) {
        guard link != nil, machine.isAnswering else { return }
        write(
            PreparedResponse(status: status, headers: Self.framing(fieldLines.length), body: .bytes(body)), exchange,
            fieldLines: .proxied(fieldLines))
    }

    /// A streamed proxied answer whose fields go as HTTP/1.1 lines.
    func startStream(_ stream: HTTPResponseStream, status: Int, fieldLines: ProxyHeaders.ResponseFieldLines, exchange: Exchange) {
        guard link != nil, machine.isAnswering else { return }
        startStream(stream, status: status, headers: Self.framing(fieldLines.length), fieldLines: .proxied(fieldLines), exchange)
    }

    /// The one field the writer looks for in the head of an answer given as field lines.
    private static func framing(_ length: String?) -> HTTPHeaders {
        length.map { ["content-length": $0] } ?? [:]
    }

    private func writeWhenReady(_ future: EventLoopFuture<PreparedResponse>, _ exchange: Exchange) {
        let loopBoundSelf = NIOLoopBound(self, eventLoop: future.eventLoop)
        future.whenComplete { result in
            let handler = loopBoundSelf.value
            switch result {
            case .success(let prepared):
                guard handler.link != nil else { return prepared.discard() }
                handler.write(prepared, exchange)
            case .failure(let error) where DescriptorShortage.isShortage(error):
                // Out of descriptors: the server is full, not broken (logged once per episode).
                handler.environment.files.descriptors.failed(.file, error: error)
                let text = ByteBuffer(string: HTTPResponse.statusText(503))
                handler.write(PreparedResponse(status: 503, headers: [:], body: .bytes(text)), exchange)
            case .failure(let error):
                handler.environment.logger.error("cannot read file", metadata: ["error": "\(error)"])
                handler.write(PreparedResponse(status: 500, headers: [:], body: .bytes(ByteBuffer(string: HTTPResponse.statusText(500)))), exchange)
            }
        }
    }

    /// `fieldLines`: the response's headers as lines (a cached file's plain answer, a proxied one).
    private func write(_ response: PreparedResponse, _ exchange: Exchange, fieldLines: HeadFieldLines? = nil) {
        guard let link else { return response.discard() }
        let bodyless = exchange.headOnly || HTTPResponse.forbidsBody(response.status)
        writeHead(
            response.status, response.headers, fieldLines: fieldLines, contentLength: response.contentLength, exchange,
            link: link)
        if !bodyless {
            switch response.body {
            case .bytes(let buffer):
                if buffer.readableBytes > 0 { writer.body(.byteBuffer(buffer), promise: nil, link: link) }
            case .file(let region, _) where sendsFileRegions && region.readableBytes > FileRegionSlices.sliceSize:
                return sendSlices(region, exchange, link: link)
            case .file(let region, _) where sendsFileRegions:
                let written = link.eventLoop.makePromise(of: Void.self)
                written.futureResult.whenComplete { _ in try? region.fileHandle.close() }
                writer.body(.fileRegion(region), promise: written, link: link)
            case .file(let region, let origin):
                return copy(region, origin.file, exchange, link: link)
            }
        } else {
            response.discard()
        }
        endResponse(exchange, link: link)
    }

    /// Sends a large file region with sendfile, slice by slice (`FileRegionSlices`); the
    /// answer ends with the last slice.
    private func sendSlices(_ region: FileRegion, _ exchange: Exchange, link: ExchangeLink) {
        let loopBoundSelf = NIOLoopBound(self, eventLoop: link.eventLoop)
        let sink = FileRegionSlices.Sink(
            write: { slice, promise in
                let handler = loopBoundSelf.value
                guard let link = handler.link else { return promise.fail(ChannelError.ioOnClosedChannel) }
                handler.writer.body(.fileRegion(slice), promise: promise, link: link)
                handler.writer.flush(link: link)
            },
            progressed: { loopBoundSelf.value.timeouts.sendProgressed() },
            finished: { result in
                let handler = loopBoundSelf.value
                guard let link = handler.link else { return }
                switch result {
                case .success:
                    handler.endResponse(exchange, link: link)
                case .failure(let error):
                    handler.environment.logger.debug("file body not sent", metadata: ["error": "\(error)"])
                    handler.machine.answerAborted()
                    link.close()
                }
            })
        FileRegionSlices(region: region, eventLoop: link.eventLoop, sink: sink).start()
    }

    /// Sends a file region as buffers (`FileBodyCopier`), for transports that cannot sendfile.
    private func copy(_ region: FileRegion, _ file: StaticFile, _ exchange: Exchange, link: ExchangeLink) {
        writer.flush(link: link)
        let loopBoundSelf = NIOLoopBound(self, eventLoop: link.eventLoop)
        let sink = FileBodyCopier.Sink(
            write: { chunk in
                let handler = loopBoundSelf.value
                guard let link = handler.link else { return }
                handler.writer.body(.byteBuffer(chunk), promise: nil, link: link)
                handler.writer.flush(link: link)
            },
            isWritable: { loopBoundSelf.value.link?.isWritable ?? false },
            finished: { result in
                let handler = loopBoundSelf.value
                handler.activeCopy = nil
                guard let link = handler.link else { return }
                switch result {
                case .success:
                    handler.endResponse(exchange, link: link)
                case .failure(let error):
                    if DescriptorShortage.isShortage(error) { handler.environment.files.descriptors.failed(.file, error: error) }
                    handler.environment.logger.debug("file body not sent", metadata: ["error": "\(error)"])
                    handler.machine.answerAborted()
                    link.close()
                }
            })
        let copier = FileBodyCopier(
            file: file, handle: region.fileHandle, range: region.readerIndex..<region.endIndex, files: environment.files,
            allocator: link.allocator, eventLoop: link.eventLoop, sink: sink)
        activeCopy = copier
        copier.start()
    }

    /// Writes the head; `contentLength` nil means a streamed body (chunked, or until close).
    /// The status goes as its number down to the bytes: an `HTTPResponseStatus` built on the way
    /// and asked its code again cost about 100 instructions per answer.
    private func writeHead(
        _ status: Int, _ headers: HTTPHeaders, fieldLines: HeadFieldLines? = nil, contentLength: Int?,
        _ exchange: Exchange, link: ExchangeLink
    ) {
        let forbidsBody = HTTPResponse.forbidsBody(status)
        let bodyless = exchange.headOnly || forbidsBody
        if logEntry != nil {
            logEntry?.status = status
            logEntry?.bytes = bodyless ? 0 : contentLength
        }
        if metricsEntry != nil {
            metricsEntry?.status = status
            metricsEntry?.bytes = bodyless ? 0 : contentLength
        }
        var fields = ServerOwnedFields(date: environment.dateCache.now)
        if let contentLength, !forbidsBody, !(exchange.headOnly && headers.contains(name: "content-length")) {
            fields.contentLength = contentLength
        }
        if exchange.version.major == 1 {
            if !exchange.keepAlive || quiescing {
                fields.connection = "close"
            } else if exchange.version.minor == 0 {
                fields.connection = "keep-alive"
            }
        }
        writer.head(
            status: status, version: exchange.version, headers: headers, fields: &fields, fieldLines: fieldLines,
            streamed: contentLength == nil, bodyless: bodyless, link: link)
    }

    /// Ends the response (with the trailer fields of a streamed one); the connection then
    /// handles the next request or closes.
    private func endResponse(_ exchange: Exchange, trailers: HTTPHeaders? = nil, link: ExchangeLink) {
        defer { sendWatch?.answerEnded() }
        if let entry = logEntry.take() { environment.accessLog?.record(entry, on: link.eventLoop) }
        if let entry = metricsEntry.take() { environment.metrics?.requestAnswered(entry) }
        switch machine.responseEnded(keepAlive: exchange.keepAlive && !quiescing) {
        case .nextRequest:
            // An HTTP/2 stream has no next request: its timer must not start a keep-alive wait.
            if isHTTP1 { timeouts.answerStarted() }
            writer.end(trailers: trailers, promise: nil, link: link)
            answerEnded(link: link)
        case .close:
            let ended = link.eventLoop.makePromise(of: Void.self)
            link.close(after: ended.futureResult)
            writer.end(trailers: trailers, promise: ended, link: link)
        }
    }

    private func startStream(
        _ stream: HTTPResponseStream, status: Int, headers: HTTPHeaders, fieldLines: HeadFieldLines? = nil, _ exchange: Exchange
    ) {
        guard let link else { return stream.connectionClosed() }
        var exchange = exchange
        // HTTP/1.0 has no chunked encoding: the body ends when the connection does.
        if exchange.version == .http1_0 { exchange.keepAlive = false }
        writeHead(status, headers, fieldLines: fieldLines, contentLength: nil, exchange, link: link)
        writer.flush(link: link)
        activeStream = stream
        let loopBoundSelf = NIOLoopBound(self, eventLoop: link.eventLoop)
        stream.attach(
            write: { chunk, written in
                let handler = loopBoundSelf.value
                guard let link = handler.link, !exchange.headOnly else { return written?() ?? () }
                let promise = written.map { written in
                    // Completed on this loop, where `written` was made.
                    let callback = UnsafeTransfer(written)
                    let promise = link.eventLoop.makePromise(of: Void.self)
                    promise.futureResult.whenComplete { _ in callback.value() }
                    return promise
                }
                handler.writer.body(.byteBuffer(chunk), promise: promise, link: link)
                handler.writer.flush(link: link)
            },
            finish: { trailers in
                let handler = loopBoundSelf.value
                handler.activeStream = nil
                guard let link = handler.link else { return }
                handler.endResponse(exchange, trailers: exchange.headOnly ? nil : trailers, link: link)
            },
            abort: {
                let handler = loopBoundSelf.value
                handler.activeStream = nil
                handler.machine.answerAborted()
                handler.link?.close()
            },
            isWritable: { loopBoundSelf.value.link?.isWritable ?? false })
    }

    /// A protocol error the handler found: answered with its status (or, when an answer is
    /// under way, by closing), and reported.
    func fail(_ status: Int, _ message: String, link: ExchangeLink) {
        perform(machine.failed(status: status, message: message), link: link)
    }

    /// Reports a protocol error, answers it with its status, and closes the connection (HTTP/1.1)
    /// or ends the stream (HTTP/2).
    func answerError(_ status: Int, _ message: String, link: ExchangeLink) {
        report("\(message) (\(status))")
        let text = HTTPResponse.statusText(status)
        var fields = ServerOwnedFields(contentLength: text.utf8.count, date: environment.dateCache.now)
        if isHTTP1 { fields.connection = "close" }
        writer.head(
            status: status, version: .http1_1,
            headers: ["content-type": "text/plain; charset=utf-8"], fields: &fields, streamed: false, bodyless: false,
            link: link)
        writer.body(.byteBuffer(ByteBuffer(string: text)), promise: nil, link: link)
        if !isHTTP1 {
            // HTTP/2: the answer is complete; NO_ERROR asks the client to stop sending the
            // rest of the request (RFC 9113 section 8.1). The connection goes on.
            writer.end(promise: nil, link: link)
            sendWatch?.answerEnded()
            link.stopRequest()
            return
        }
        let ended = link.eventLoop.makePromise(of: Void.self)
        link.closeLingering(after: ended.futureResult)
        writer.end(promise: ended, link: link)
    }

    func report(_ message: String) {
        environment.logger.warning(
            "bad request", metadata: ["peer": "\(connection.remoteIP):\(connection.remotePort)", "error": "\(message)"])
        environment.delegate.protocolError(connection, message: message)
    }
}
