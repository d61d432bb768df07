import Foundation
import NIOCore
import NIOHTTP1
import XCTest

@testable import MoonwireCore

/// The loop's cache of small files: what it keeps, and that a kept file is dropped as soon as
/// the file on disk is another (written, replaced, deleted). End to end: test_static_files.py.
final class StaticFileCacheTests: XCTestCase {
    private var www: String!
    private var resolver: StaticFileResolver!

    override func setUpWithError() throws {
        www = NSTemporaryDirectory() + "moonwire-cache-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: www + "/docs", withIntermediateDirectories: true)
        try write("<p>" + String(repeating: "cached page ", count: 200) + "</p>", to: "/page.html")
        try write("index", to: "/docs/index.html")
        try write(String(repeating: "x", count: StaticFileCache.largestFile + 1), to: "/large.txt")
        try write("fresh", to: "/fresh.txt", age: 0)
        resolver = try XCTUnwrap(StaticFileResolver(root: www))
    }

    override func tearDownWithError() throws {
        try FileManager.default.removeItem(atPath: www)
    }

    /// Writes `text` at `path` with its modification time `age` seconds ago.
    private func write(_ text: String, to path: String, age: TimeInterval = 60) throws {
        try text.write(toFile: www + path, atomically: false, encoding: .utf8)
        let then = Date(timeIntervalSinceNow: -age)
        try FileManager.default.setAttributes([.modificationDate: then], ofItemAtPath: www + path)
    }

    private func read(_ path: String) -> CachedFile? {
        guard case .file(let file) = resolver.resolve(path) else { return nil }
        return CachedFile.read(file, statPath: CachedFile.statPath(root: resolver.root, path: path), now: time(nil))
    }

    func testKeepsSmallOldFilesWithTheirGzipVariant() throws {
        let page = try XCTUnwrap(read("/page.html"))
        XCTAssertEqual(page.contents.readableBytes, page.file.size)
        let gzipped = try XCTUnwrap(page.gzipped)
        XCTAssertLessThan(gzipped.readableBytes, page.file.size)
        XCTAssertEqual(try XCTUnwrap(read("/docs/")).statPath, resolver.root + "/docs/index.html")
    }

    func testLeavesLargeAndFreshFilesOnDisk() {
        XCTAssertNil(read("/large.txt"))
        XCTAssertNil(read("/fresh.txt"))
    }

    func testAnswersUntilTheFileChanges() throws {
        let cache = StaticFileCache()
        cache.insert(try XCTUnwrap(read("/page.html")), for: "/page.html")
        XCTAssertNotNil(cache.current("/page.html"))
        try write("<p>changed</p>", to: "/page.html", age: 30)
        XCTAssertNil(cache.current("/page.html"))
        XCTAssertNil(cache.current("/page.html"), "a dropped file stays dropped")
    }

    func testDropsAFileReplacedWithTheSameSizeAndTime() throws {
        let cache = StaticFileCache()
        let cached = try XCTUnwrap(read("/page.html"))
        cache.insert(cached, for: "/page.html")
        let text = try String(contentsOfFile: www + "/page.html", encoding: .utf8)
        let modified = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: www + "/page.html")[.modificationDate])
        try text.uppercased().write(toFile: www + "/new.html", atomically: false, encoding: .utf8)
        try FileManager.default.setAttributes([.modificationDate: modified], ofItemAtPath: www + "/new.html")
        XCTAssertEqual(rename(www + "/new.html", www + "/page.html"), 0)
        XCTAssertNil(cache.current("/page.html"), "another inode")
    }

    func testDropsADeletedFile() throws {
        let cache = StaticFileCache()
        cache.insert(try XCTUnwrap(read("/docs/")), for: "/docs/")
        try FileManager.default.removeItem(atPath: www + "/docs/index.html")
        XCTAssertNil(cache.current("/docs/"))
    }

    func testStartsAgainEmptyWhenFull() throws {
        let cache = StaticFileCache()
        let page = try XCTUnwrap(read("/page.html"))
        for index in 0..<StaticFileCache.mostFiles { cache.insert(page, for: "/\(index)") }
        XCTAssertNotNil(cache.current("/0"))
        cache.insert(page, for: "/one-more")
        XCTAssertNil(cache.current("/0"))
        XCTAssertNotNil(cache.current("/one-more"))
    }

    func testAPlainGetTakesTheAnswerMadeWithTheBytes() throws {
        let page = try XCTUnwrap(read("/page.html"))
        let answer = try XCTUnwrap(page.plainAnswer(request: ["host": "x"], headOnly: false, extraHeaders: [:]))
        let plain = answer.response
        XCTAssertEqual(answer.fieldLines, HTTP1ResponseSerializer.fieldLines(plain.headers))
        XCTAssertEqual(plain.status, 200)
        XCTAssertEqual(plain.headers.map(\.name), ["content-type", "accept-ranges", "etag", "last-modified", "vary"])
        XCTAssertEqual(plain.headers.first(name: "content-type"), page.file.contentType)
        XCTAssertEqual(plain.headers.first(name: "etag"), page.file.etag)
        XCTAssertEqual(plain.headers.first(name: "last-modified"), HTTPDate.format(page.file.modifiedSeconds))
        XCTAssertEqual(plain.headers.first(name: "vary"), "Accept-Encoding")
        guard case .bytes(let body) = plain.body else { return XCTFail("a file body") }
        XCTAssertEqual(body, page.contents)

        let gzipAnswer = try XCTUnwrap(page.plainAnswer(request: ["accept-encoding": "gzip"], headOnly: false, extraHeaders: [:]))
        let gzip = gzipAnswer.response
        XCTAssertEqual(gzipAnswer.fieldLines, HTTP1ResponseSerializer.fieldLines(gzip.headers))
        XCTAssertEqual(gzip.headers.first(name: "content-encoding"), "gzip")
        XCTAssertEqual(gzip.headers.first(name: "etag"), ResponseCompression.gzipETag(page.file.etag))
        guard case .bytes(let gzipped) = gzip.body else { return XCTFail("a file body") }
        XCTAssertEqual(gzipped, page.gzipped)
    }

    func testOtherRequestsAreNotPlain() throws {
        let page = try XCTUnwrap(read("/page.html"))
        let deciding: [HTTPHeaders] = [
            ["If-None-Match": page.file.etag], ["if-modified-since": HTTPDate.format(page.file.modifiedSeconds)],
            ["if-match": "*"], ["if-unmodified-since": HTTPDate.format(0)], ["Range": "bytes=0-1"],
        ]
        for request in deciding {
            XCTAssertNil(page.plainAnswer(request: request, headOnly: false, extraHeaders: [:]), "\(request)")
        }
        XCTAssertNil(page.plainAnswer(request: [:], headOnly: true, extraHeaders: [:]), "HEAD")
        XCTAssertNil(page.plainAnswer(request: [:], headOnly: false, extraHeaders: ["x-from": "handler"]))
    }

    func testTheBoundCountsTheGzipVariant() throws {
        // Hexadecimal digits of a pseudo-random sequence: gzip keeps about half of them.
        var state: UInt64 = 42
        let text = String((0..<StaticFileCache.largestFile).map { _ -> Character in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Character(String(state >> 60, radix: 16))
        })
        try write(text, to: "/random.txt")
        let file = try XCTUnwrap(read("/random.txt"))
        XCTAssertGreaterThan(file.bytes, file.contents.readableBytes)
        let fitting = StaticFileCache.mostBytes / file.bytes
        XCTAssertLessThan((fitting + 1) * file.contents.readableBytes, StaticFileCache.mostBytes, "the contents alone would fit")
        let cache = StaticFileCache()
        for index in 0..<fitting { cache.insert(file, for: "/\(index)") }
        XCTAssertNotNil(cache.current("/0"))
        cache.insert(file, for: "/one-more")
        XCTAssertNil(cache.current("/0"))
        XCTAssertNotNil(cache.current("/one-more"))
    }

    func testKeysOfOtherRootsDiffer() {
        XCTAssertNotEqual(StaticFileCache.key(path: "/a", root: nil), StaticFileCache.key(path: "/a", root: "/srv/other"))
    }
}
