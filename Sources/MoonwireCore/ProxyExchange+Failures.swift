// How a forwarded request fails or goes again: the upstream's answer cut off or never come, the
// deadline passed, and the status page (or the hook's answer) the client then gets.
import NIOCore

extension ProxyExchange {
    /// The upstream failed: the answer is cut off, or fails with a status, or the request goes again.
    func responseFailed(_ failure: OutboundHTTPFailure) {
        guard !finished else { return }
        connection = nil
        if let stream = clientStream {
            log("upstream answer cut off", failure.description)
            end()
            return stream.abort()
        }
        if pendingHead.take() != nil {
            // The head came, but nothing of it reached the client yet: a status can still say so.
            heldFirst = nil
            held = []
            return failWith(failure)
        }
        if headArrived {
            // The hook is deciding; the head it has stays, the body is cut short.
            log("upstream answer cut off", failure.description)
            heldEnd = true
            heldCut = true
            return
        }
        // Nothing of the answer came and nothing of the body was lost: an idempotent request
        // goes again, on a new connection when a kept one had been closed while idle, else to
        // the next server.
        if case .closedEarly = failure, !bodyTaken, idempotent {
            pool.unwatch(self)
            if reused, !retriedStale {
                retriedStale = true
                return pool.checkout(url, tls: target.tls, connectTimeout: target.connectTimeout) { [self] result in
                    switch result {
                    case .failure(let error): fail(error.isTimeout ? 504 : 502, error.description)
                    case .success(let connection): finished ? connection.abandon() : send(on: connection)
                    }
                }
            }
            if let group, tried.count < group.servers.count {
                log("upstream closed before answering, trying the next server", failure.description)
                return attempt()
            }
        }
        failWith(failure)
    }

    private func failWith(_ failure: OutboundHTTPFailure) {
        if case .timeout = failure { return fail(504, failure.description) }
        fail(502, failure.description)
    }

    private var idempotent: Bool {
        switch request.method {
        case "GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE": true
        default: false
        }
    }

    // MARK: Failing

    /// The deadline passed: no head in time (504), or the upstream stalled mid-answer.
    func expire() {
        // A client that reads slowly is the server's send_timeout's business.
        if clientHeld {
            deadline = .now() + target.timeout
            return
        }
        let seconds = Double(target.timeout.nanoseconds) / 1e9
        connection?.fail(.timeout(seconds: seconds))
    }

    /// Ends the exchange with `status` (502, 504): the hook, when there is one, answers the
    /// client instead of the status page.
    func fail(_ status: Int, _ message: String) {
        guard !finished else { return }
        log("forward failed", message)
        connection?.abandon()
        connection = nil
        hookCalled = hook != nil
        end()
        guard let hook else { return responder.respond(.statusPage(status)) }
        hook(.failed(status: status, message: message)) { [responder] decision in
            switch decision {
            case .forward(let status, let headers):
                var response = HTTPResponse.statusPage(status)
                for (name, value) in headers where name.lowercased() != "content-length" { response.headers.add(name: name, value: value) }
                responder.respond(response)
            case .answer(let response):
                responder.respond(response)
            }
        }
    }
}
