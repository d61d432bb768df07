import XCTest

@testable import MoonwireCore

/// The rate limit script's replies as decisions (the script itself runs against redis-server in
/// Tests/integration/test_cluster_state.py): anything but the two shapes it returns is an error,
/// which makes moonwire.limit fall back to the node's own bucket.
final class RedisRateLimitTests: XCTestCase {
    func testTheScriptsTwoAnswers() throws {
        XCTAssertEqual(try RedisRateLimit.decision(.array([.integer(1), .bulk(Array("0".utf8))])).get(), .allowed)
        XCTAssertEqual(
            try RedisRateLimit.decision(.array([.integer(0), .bulk(Array("0.25".utf8))])).get(), .refused(retryAfter: 0.25))
    }

    func testAnythingElseIsAnError() {
        let odd: [RedisReply] = [
            .error("NOSCRIPT gone"), .null, .integer(1), .array([.integer(1)]),
            .array([.integer(0), .bulk(Array("soon".utf8))]), .array([.integer(0), .bulk(Array("-1".utf8))]),
            .array([.integer(0), .bulk(Array("inf".utf8))]), .array([.integer(2), .bulk(Array("0".utf8))]),
        ]
        for reply in odd {
            guard case .failure = RedisRateLimit.decision(reply) else { return XCTFail("\(reply) was taken for a decision") }
        }
        guard case .failure(let error) = RedisRateLimit.decision(.error("OOM command not allowed")) else { return XCTFail() }
        XCTAssertEqual(error.description, "OOM command not allowed")
    }
}
