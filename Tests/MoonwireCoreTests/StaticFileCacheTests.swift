import Foundation
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

    func testKeysOfOtherRootsDiffer() {
        XCTAssertNotEqual(StaticFileCache.key(path: "/a", root: nil), StaticFileCache.key(path: "/a", root: "/srv/other"))
    }
}
