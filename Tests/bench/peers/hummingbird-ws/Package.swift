// swift-tools-version:6.2
// The WebSocket peer of `make bench`: hummingbird-websocket echoing every message back, no
// scripting. A package of its own so that Moonwire's Package.swift never depends on Hummingbird;
// Tests/bench/run.sh builds it in release from the machine's package copies.
import PackageDescription

let package = Package(
    name: "hummingbird-ws",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket.git", from: "2.8.1"),
    ],
    targets: [
        .executableTarget(
            name: "HummingbirdEcho",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
            ]
        )
    ]
)
