// moonwire.http: request{...}, get(url [, opts]) and post(url, body [, opts]). Each call takes
// the running call as a waiter, starts the request on the server's outbound client (its
// connection on the VM's own loop), and yields; the answer resumes the call on that loop with
// `{status=, headers=, body=}`, or with `nil, err` when the network failed. Redirects are
// followed here, per request (see HTTPRedirect.swift).
import AsyncHTTPClient
import CLua
import MoonwireCore
import NIOCore
import NIOHTTP1

extension LuaVM {
    /// Pushes the `moonwire.http` table.
    func installHTTPClient() {
        httpAnswerTables = LuaHTTPAnswerTables(in: L)
        lua_createtable(L, 0, 3)
        L.setFunction("request", luaHTTPRequest)
        L.setFunction("get", luaHTTPGet)
        L.setFunction("post", luaHTTPPost)
    }
}

/// `moonwire.http.request{url=, method=, headers=, body=, timeout=, max_body_size=,
/// follow_redirects=, tls=}`.
private let luaHTTPRequest: LuaFunction = { L in
    let L = L!
    let function = LuaAPI.httpRequest
    guard L.type(at: 1) == LUA_TTABLE else {
        return L.raise("\(function.name): expected a table of options {url=, ...}, got \(describeArgument(L, 1))")
    }
    return startHTTPRequest(L, function, LuaHTTPRequestOptions.read(L, function: function.name, options: 1, url: nil, method: nil, body: nil))
}

/// `moonwire.http.get(url [, opts])`. Without options, the VM's kept request (see
/// `LuaRecentPooledRequest`) is looked for by the URL's bytes first.
private let luaHTTPGet: LuaFunction = { L in
    let L = L!
    let function = LuaAPI.httpGet
    guard L.type(at: 1) == LUA_TSTRING else {
        return L.raise("\(function.name): expected a URL string, got \(describeArgument(L, 1))")
    }
    guard let options = optionsIndex(L, 2, function) else { return LuaReturn.raise }
    if options == 0 {
        let vm = LuaVM.from(L)
        if let pool = vm.outboundPool, vm.runtime.outboundHTTP != nil, let kept = vm.recentPooledRequest.lookup(L, url: 1) {
            vm.runtime.outboundRequests.increment()
            return sendPooled(
                L, function, timeout: LuaHTTPRequestOptions.defaultTimeout, maxBodySize: LuaHTTPRequestOptions.defaultMaxBodySize,
                redirects: nil, through: pool, to: kept.target, kept.request)
        }
    }
    return startHTTPRequest(
        L, function, LuaHTTPRequestOptions.read(L, function: function.name, options: options, url: L.string(at: 1), method: nil, body: nil))
}

/// `moonwire.http.post(url, body [, opts])`.
private let luaHTTPPost: LuaFunction = { L in
    let L = L!
    let function = LuaAPI.httpPost
    guard L.type(at: 1) == LUA_TSTRING, let url = L.string(at: 1) else {
        return L.raise("\(function.name): expected a URL string, got \(describeArgument(L, 1))")
    }
    guard L.type(at: 2) == LUA_TSTRING, let body = L.buffer(at: 2) else {
        return L.raise("\(function.name): expected the body as a string, got \(describeArgument(L, 2))")
    }
    guard let options = optionsIndex(L, 3, function) else { return LuaReturn.raise }
    return startHTTPRequest(L, function, LuaHTTPRequestOptions.read(L, function: function.name, options: options, url: url, method: .POST, body: body))
}

/// An argument as messages show it; `nil` for one not given (describe reads a real slot).
private func describeArgument(_ L: LuaThread, _ index: Int32) -> String {
    L.type(at: index) == LUA_TNONE ? "nil" : L.describe(at: index)
}

/// The index of the optional options table (0 when absent); nil with the error pushed when the
/// argument is something else.
private func optionsIndex(_ L: LuaThread, _ index: Int32, _ function: LuaAPIFunction) -> Int32? {
    switch L.type(at: index) {
    case LUA_TNONE, LUA_TNIL: return 0
    case LUA_TTABLE: return index
    default:
        L.push("\(function.name): expected a table of options, got \(describeArgument(L, index))")
        return nil
    }
}

/// Raises a bad argument, or starts the request and yields.
private func startHTTPRequest(
    _ L: LuaThread, _ function: LuaAPIFunction, _ read: consuming Result<LuaHTTPRequestOptions, LuaHTTPArgumentError>
) -> Int32 {
    let options: LuaHTTPRequestOptions
    switch consume read {
    case .success(let read): options = read
    case .failure(let error): return L.raise(error.message)
    }
    let vm = LuaVM.from(L)
    guard let client = vm.runtime.outboundHTTP else {
        return L.raise("\(function.name): this server has no HTTP client (only `moonwire serve` makes one)")
    }
    vm.runtime.outboundRequests.increment()
    if let pool = vm.outboundPool, let (url, request) = options.pooled(recent: &vm.recentPooledRequest) {
        return sendPooled(
            L, function, timeout: options.timeout, maxBodySize: options.maxBodySize,
            redirects: options.redirects > 0 ? (client, options) : nil, through: pool, to: url, request)
    }
    let request: HTTPClient.Request
    do {
        request = try options.clientRequest()
    } catch {
        return L.raise("\(function.name): bad URL \"\(options.url)\"")
    }
    guard let waiter = LuaVM.waiter(L, function) else { return LuaReturn.raise }
    LuaHTTPExchange(waiter: waiter, client: client, options: options, deadline: exchangeDeadline(options.timeout)).send(request)
    return LuaReturn.yield
}

/// Takes the call as a waiter, sends `request` through the loop's pool and yields.
private func sendPooled(
    _ L: LuaThread, _ function: LuaAPIFunction, timeout: Double, maxBodySize: Int, redirects: LuaPooledHTTPExchange.Redirects?,
    through pool: OutboundHTTP1Pool, to url: OutboundURL, _ request: OutboundHTTP1Pool.Request
) -> Int32 {
    guard let waiter = LuaVM.waiter(L, function) else { return LuaReturn.raise }
    let exchange = LuaPooledHTTPExchange(
        waiter: waiter, timeout: timeout, maxBodySize: maxBodySize, redirects: redirects, to: url, request)
    pool.execute(exchange)
    waiter.onAbandon { [exchange] in exchange.cancel() }
    return LuaReturn.yield
}

/// When an exchange of `timeout` seconds, redirects included, must have ended.
private func exchangeDeadline(_ timeout: Double) -> NIODeadline {
    .now() + .nanoseconds(Int64(timeout * 1e9))
}

/// One request of a waiting call through the loop's keep-alive pool, until it answers the
/// call; a redirect to follow goes on through a `LuaHTTPExchange`.
private final class LuaPooledHTTPExchange: OutboundHTTP1Exchange {
    /// What a redirect goes on with, kept only by a request that follows redirects: most do not,
    /// and keeping the client and the options cost each of them a few retains and releases.
    typealias Redirects = (client: OutboundHTTP, options: LuaHTTPRequestOptions)

    private let waiter: LuaWaiter
    private let redirects: Redirects?
    /// The answer when it arrived before the call yielded, until the resumed call pushes it.
    private var response: OutboundHTTPResponse?

    init(
        waiter: LuaWaiter, timeout: Double, maxBodySize: Int, redirects: Redirects?, to url: OutboundURL,
        _ request: OutboundHTTP1Pool.Request
    ) {
        self.waiter = waiter
        self.redirects = redirects
        super.init(
            request, to: url, deadline: exchangeDeadline(timeout), seconds: timeout,
            connectTimeout: .nanoseconds(Int64(OutboundHTTP.connectTimeout * 1e9)), maxBodySize: maxBodySize)
    }

    override func answered(_ result: consuming Result<OutboundHTTPResponse, OutboundHTTPFailure>) {
        switch consume result {
        case .success(let response):
            if let redirects, (300..<400).contains(response.head.status) {
                return LuaHTTPExchange(waiter: waiter, client: redirects.client, options: redirects.options, deadline: deadline)
                    .answered(response.head.httpResponseHead, response.body, to: nil)
            }
            // The answer is pushed where it lies; stored only when the call has not yielded yet.
            if waiter.resumeNow({ T in pushHTTPAnswer(status: response.head.status, response.body, head: response.head, on: T) }) {
                return
            }
            self.response = consume response
            waiter.resume { [self] T in pushResponse(on: T) }
        case .failure(let failure): waiter.resume(failure: failure.description)
        }
    }

    private func pushResponse(on T: LuaThread) -> Int32 {
        let response = response.take()!
        return pushHTTPAnswer(status: response.head.status, response.body, head: response.head, on: T)
    }
}

/// One request of a waiting call through AsyncHTTPClient (TLS, and so HTTP/2; redirects),
/// through its redirects, until it answers the call.
private final class LuaHTTPExchange {
    private let waiter: LuaWaiter
    private let client: OutboundHTTP
    private let options: LuaHTTPRequestOptions
    private var redirectsLeft: Int
    private let deadline: NIODeadline
    /// Worker VMs run on loops of their own, outside the client's group.
    private let ownLoop: Bool

    init(waiter: LuaWaiter, client: OutboundHTTP, options: LuaHTTPRequestOptions, deadline: NIODeadline) {
        self.waiter = waiter
        self.client = client
        self.redirectsLeft = options.redirects
        self.deadline = deadline
        self.ownLoop = !waiter.vm.isWorker
        self.options = options
    }

    func send(_ request: HTTPClient.Request) {
        let collector = HTTPResponseCollector(maxBodySize: options.maxBodySize, isHead: request.method == .HEAD)
        let task = client.execute(request, collector: collector, on: waiter.eventLoop, ownLoop: ownLoop, deadline: deadline)
        waiter.onAbandon { task.cancel() }
        task.futureResult.hop(to: waiter.eventLoop).assumeIsolated().whenComplete { result in
            switch result {
            case .success(let response): self.answered(response.head, response.body, to: request)
            case .failure(let error):
                self.waiter.resume(
                    failure: HTTPClientFailure.message(for: error, host: request.host, port: request.port, timeout: self.options.timeout))
            }
        }
    }

    /// An answer to `request` (nil: the pool's, to the options' request).
    func answered(_ head: HTTPResponseHead, _ body: ByteBuffer, to request: HTTPClient.Request?) {
        if options.redirects > 0, let current = request ?? (try? options.clientRequest()),
            let next = HTTPRedirect.next(after: head, to: current)
        {
            guard redirectsLeft > 0 else {
                return waiter.resume(failure: "too many redirects (more than \(options.redirects))")
            }
            // A call that ended meanwhile (its handler timed out) follows nothing more.
            guard waiter.vm.calls[waiter.callID] != nil else { return }
            redirectsLeft -= 1
            return send(next)
        }
        waiter.resume { T in pushHTTPAnswer(status: Int(head.status.code), body, headers: head.headers, on: T) }
    }
}
