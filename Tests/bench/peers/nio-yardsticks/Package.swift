// swift-tools-version:6.2
// Measuring sticks, not peers in `make bench`: the least SwiftNIO costs per request, counted by
// `Tests/bench/instructions.sh` like Moonwire's. NIOH2Hello answers "hello" to every HTTP/2
// request (h2c, prior knowledge) in one of two shapes: `streams`, NIO's usual one (a child
// channel per stream with NIO's HTTP/2-to-HTTP/1 codec and one handler), and `frames` (no
// multiplexer: the frames handled at the connection by one handler); `HTTP2=streams|frames`.
// NIOH1Floor answers every HTTP/1.1 request head with constant bytes, parsing nothing: NIO's
// channel alone (`HTTP1=floor`). A package of its own so that Moonwire's Package.swift is
// untouched.
import PackageDescription

let package = Package(
    name: "nio-yardsticks",
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.46.0"),
    ],
    targets: [
        .executableTarget(
            name: "NIOH1Floor",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "NIOH2Hello",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
            ]
        )
    ]
)
