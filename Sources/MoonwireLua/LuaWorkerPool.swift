// Worker VMs off the event loops (the meaning we give to sgc's OnHTTP2BeforeAsyncRequest): a
// CPU-heavy handler runs there, so the loop that owns the connection keeps serving others.
import MoonwireCore
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A few loops, each with its own VM generation of the same scripts; requests are spread over
/// them in turn and their answers go back to the connection's loop.
public final class LuaWorkerPool: Sendable {
    /// One host per worker loop; reloads treat them like the event loops' hosts.
    public let hosts: [NIOLoopBound<LuaEventLoopHost>]
    private let next = NIOLockedValueBox(0)

    /// Loads the scripts on every loop of `group` (in worker VMs, `moonwire.worker` is true).
    public init(runtime: LuaRuntime, scripts: ScriptSnapshot, group: EventLoopGroup) throws {
        hosts = try group.makeIterator().map { loop in
            try loop.submit {
                NIOLoopBound(try LuaEventLoopHost(runtime: runtime, scripts: scripts, eventLoop: loop, isWorker: true), eventLoop: loop)
            }.wait()
        }
    }

    /// Runs the request's handlers on the next worker; call on the connection's loop.
    func dispatch(_ request: HTTPRequest, responder: HTTPResponder, from loop: EventLoop) {
        let worker = next.withLockedValue { value -> NIOLoopBound<LuaEventLoopHost> in
            defer { value = (value + 1) % hosts.count }
            return hosts[value]
        }
        let relay = HTTPResponderRelay(responder, on: loop)
        worker.eventLoop.execute {
            worker.value.current.handle(request, responder: relay.makeResponder())
        }
    }
}
