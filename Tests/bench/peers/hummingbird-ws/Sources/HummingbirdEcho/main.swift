// WebSocket echo on hummingbird-websocket for `make bench`: every message (text or binary,
// reassembled from its fragments) goes back as it came, on the upgrade of any path; GET /hello
// answers "hello" so the bench can tell when it is ready. One event loop thread, as Moonwire
// runs with --threads 1.
//
//   HummingbirdEcho PORT
import Hummingbird
import HummingbirdWebSocket
import NIOCore
import NIOPosix

guard CommandLine.arguments.count == 2, let port = Int(CommandLine.arguments[1]) else {
    print("usage: HummingbirdEcho PORT")
    exit(2)
}

let router = Router()
router.get("/hello") { _, _ in "hello" }

let app = Application(
    router: router,
    server: .http1WebSocketUpgrade(configuration: .init(ws: .init(maxFrameSize: 1 << 20))) { _, _, _ in
        .upgrade([:]) { inbound, outbound, _ in
            for try await message in inbound.messages(maxSize: 1 << 20) {
                switch message {
                case .text(let text): try await outbound.write(.text(text))
                case .binary(let bytes): try await outbound.write(.binary(bytes))
                }
            }
        }
    },
    configuration: .init(address: .hostname("127.0.0.1", port: port)),
    eventLoopGroupProvider: .shared(MultiThreadedEventLoopGroup(numberOfThreads: 1))
)
try await app.runService()
