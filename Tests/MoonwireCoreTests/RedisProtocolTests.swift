import NIOCore
import XCTest

@testable import MoonwireCore

/// hiredis' reader and formatter as RedisConnection uses them, without a socket.
final class RedisProtocolTests: XCTestCase {
    private func replies(_ chunks: [String]) throws -> [RedisReply] {
        let reader = RedisReplyReader()
        var out: [RedisReply] = []
        for chunk in chunks {
            reader.feed(ByteBuffer(string: chunk))
            while let reply = try reader.next() { out.append(reply) }
        }
        return out
    }

    func testEveryReplyType() throws {
        let all = try replies(["+OK\r\n-ERR wrong\r\n:42\r\n:-7\r\n$3\r\nabc\r\n$-1\r\n*-1\r\n$0\r\n\r\n*2\r\n$1\r\na\r\n*1\r\n:1\r\n"])
        XCTAssertEqual(all, [
            .status("OK"), .error("ERR wrong"), .integer(42), .integer(-7), .bulk(Array("abc".utf8)), .null, .null,
            .bulk([]), .array([.bulk([97]), .array([.integer(1)])]),
        ])
    }

    func testRepliesSplitAnywhereComeOutWhole() throws {
        let text = "*3\r\n$5\r\nhello\r\n:12\r\n$-1\r\n+PONG\r\n"
        for cut in 1..<text.count {
            let index = text.index(text.startIndex, offsetBy: cut)
            XCTAssertEqual(try replies([String(text[..<index]), String(text[index...])]),
                           [.array([.bulk(Array("hello".utf8)), .integer(12), .null]), .status("PONG")], "cut at \(cut)")
        }
    }

    func testBulkStringsAreBinarySafe() throws {
        let reader = RedisReplyReader()
        var buffer = ByteBuffer(string: "$5\r\n")
        buffer.writeBytes([0, 13, 10, 255, 0])
        buffer.writeString("\r\n")
        reader.feed(buffer)
        XCTAssertEqual(try reader.next(), .bulk([0, 13, 10, 255, 0]))
        XCTAssertNil(try reader.next())
    }

    func testGarbageIsAProtocolError() {
        let reader = RedisReplyReader()
        reader.feed(ByteBuffer(string: "hello there\r\n"))
        XCTAssertThrowsError(try reader.next()) { error in
            XCTAssertTrue("\(error)".hasPrefix("protocol error: "), "\(error)")
        }
    }

    func testCommandsAreArraysOfBulkStrings() {
        var buffer = ByteBuffer()
        RedisCommand.format([Array("SET".utf8), [0, 10], []], into: &buffer)
        XCTAssertEqual(Array(buffer.readableBytesView), Array("*3\r\n$3\r\nSET\r\n$2\r\n".utf8) + [0, 10] + Array("\r\n$0\r\n\r\n".utf8))
    }

    func testEndpointURLs() throws {
        let plain = try RedisEndpoint(url: "redis://127.0.0.1")
        XCTAssertEqual([plain.host, "\(plain.port)", "\(plain.database)"], ["127.0.0.1", "6379", "0"])
        XCTAssertEqual(plain.handshake, [])
        let full = try RedisEndpoint(url: "redis://alice:p%40ss@redis.example:6380/3")
        XCTAssertEqual(full.host, "redis.example")
        XCTAssertEqual(full.port, 6380)
        XCTAssertEqual(full.handshake, [["AUTH", "alice", "p@ss"], ["SELECT", "3"]])
        XCTAssertEqual(try RedisEndpoint(url: "redis://:secret@[::1]:7000/0").handshake, [["AUTH", "secret"]])
        XCTAssertEqual(try RedisEndpoint(url: "redis://[::1]:7000").target, "[::1]:7000")
        XCTAssertNil(plain.tls)
        let secure = try RedisEndpoint(url: "rediss://:pw@redis.example:6380/1")
        XCTAssertEqual(secure.tls, OutboundTLS(verify: true))
        XCTAssertEqual([secure.host, "\(secure.port)", "\(secure.database)"], ["redis.example", "6380", "1"])
        for bad in ["http://x", "redis://", "redis://h:0", "redis://h:99999", "redis://h/x", "rediss://", "redis:/h", "rediss:h"] {
            XCTAssertThrowsError(try RedisEndpoint(url: bad), bad)
        }
    }
}
