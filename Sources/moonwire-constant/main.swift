// moonwire-constant: Moonwire's core answering every request with the Lua hello's exact
// response (200, text/plain, "hello") from Swift, with no Lua at all. `make bench` runs it next
// to the Lua hello to price the Lua bridge: what a request costs in the VM beyond the server.
//
//   moonwire-constant PORT        (listens on 127.0.0.1, one event loop; SIGTERM stops it)
import Foundation
import Logging
import MoonwireCore
import NIOCore
import NIOHTTP1
import NIOPosix

/// Answers everything with "hello", as `function OnCommandGet(req, res) res:send("hello") end`;
/// every other event keeps ServerDelegate's defaults.
final class ConstantDelegate: ServerDelegate {
    private let headers: HTTPHeaders = ["content-type": "text/plain; charset=utf-8"]

    func handle(_ request: HTTPRequest, responder: HTTPResponder) {
        responder.respond(HTTPResponse(status: 200, headers: headers, body: .bytes(ByteBuffer(string: "hello"))))
    }
}

guard CommandLine.arguments.count == 2, let port = Int(CommandLine.arguments[1]) else {
    FileHandle.standardError.write(Data("usage: moonwire-constant PORT\n".utf8))
    exit(2)
}
let logger = Logger(label: "moonwire-constant")
let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
let delegates = try group.makeIterator().map { loop in
    try loop.submit { NIOLoopBound<ServerDelegate>(ConstantDelegate(), eventLoop: loop) }.wait()
}
var configuration = ServerConfiguration()
configuration.listeners = [Listener(host: "127.0.0.1", port: port)]
let server = Server(
    configuration: configuration, group: group, delegates: delegates, webSockets: WebSocketRegistry(), logger: logger)
let addresses = try server.start()
logger.info("listening on http://127.0.0.1:\(addresses.first?.port ?? port)")
signal(SIGTERM, SIG_IGN)
let termination = DispatchSource.makeSignalSource(signal: SIGTERM)
let stopped = DispatchSemaphore(value: 0)
termination.setEventHandler { stopped.signal() }
termination.resume()
stopped.wait()
server.stop()
try group.syncShutdownGracefully()
