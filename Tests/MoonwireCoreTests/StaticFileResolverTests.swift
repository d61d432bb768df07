import Foundation
import XCTest

@testable import MoonwireCore

final class StaticFileResolverTests: XCTestCase {
    private var base: String!
    private var resolver: StaticFileResolver!

    override func setUpWithError() throws {
        base = NSTemporaryDirectory() + "moonwire-static-\(UUID().uuidString)"
        let www = base + "/www"
        try FileManager.default.createDirectory(atPath: www + "/docs", withIntermediateDirectories: true)
        try "home".write(toFile: www + "/index.html", atomically: true, encoding: .utf8)
        try "docs".write(toFile: www + "/docs/index.html", atomically: true, encoding: .utf8)
        try "body{}".write(toFile: www + "/site.css", atomically: true, encoding: .utf8)
        try "secret".write(toFile: www + "/.env", atomically: true, encoding: .utf8)
        try "outside".write(toFile: base + "/secret.txt", atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: www + "/escape.txt", withDestinationPath: base + "/secret.txt")
        resolver = try XCTUnwrap(StaticFileResolver(root: www))
    }

    override func tearDownWithError() throws {
        try FileManager.default.removeItem(atPath: base)
    }

    func testServesFilesWithTheirType() {
        guard case .file(let file) = resolver.resolve("/site.css") else { return XCTFail() }
        XCTAssertTrue(file.path.hasSuffix("/site.css"))
        XCTAssertEqual(file.size, 6)
        XCTAssertEqual(file.contentType, "text/css; charset=utf-8")
    }

    func testFoldersServeIndexAndRedirectWithoutSlash() {
        guard case .file(let file) = resolver.resolve("/docs/") else { return XCTFail() }
        XCTAssertTrue(file.path.hasSuffix("/docs/index.html"))
        XCTAssertEqual(resolver.resolve("/docs"), .redirect(location: "/docs/"))
        guard case .file = resolver.resolve("/") else { return XCTFail() }
    }

    func testNothingOutsideTheRoot() {
        assertResolutions([
            "/../secret.txt": .badRequest, "/docs/../../secret.txt": .badRequest, "/..\\secret.txt": .badRequest,
            "/a\u{0}b": .badRequest, "/escape.txt": .notFound, "/.env": .notFound, "/missing": .notFound,
        ])
    }

    private func assertResolutions(_ expected: KeyValuePairs<String, StaticFileResolution>, line: UInt = #line) {
        for (path, resolution) in expected { XCTAssertEqual(resolver.resolve(path), resolution, path, line: line) }
    }

    func testMIMEFallback() {
        XCTAssertEqual(MIMETypes.type(forPath: "/a/b"), "application/octet-stream")
        XCTAssertEqual(MIMETypes.type(forPath: "/x.PNG"), "image/png")
        XCTAssertEqual(MIMETypes.type(forPath: "/a.d/b"), "application/octet-stream")
        XCTAssertEqual(MIMETypes.type(forPath: "/app.WebManifest"), "application/manifest+json")
        XCTAssertEqual(MIMETypes.type(forPath: "/a.webmanifests"), "application/octet-stream")
        XCTAssertEqual(MIMETypes.type(forPath: "/a."), "application/octet-stream")
        XCTAssertEqual(MIMETypes.type(forPath: "/été.HTMLé"), "application/octet-stream")
        XCTAssertEqual(MIMETypes.type(forPath: "/été.Html"), "text/html; charset=utf-8")
    }

    /// Segments are checked and joined in one pass: every rule must hold wherever the
    /// segment is, and a malformed one wins over a hidden one before it.
    func testPathSegmentsInAnyPosition() {
        assertResolutions([
            "/.env/../x": .badRequest, "/docs/.": .badRequest, "/docs/./index.html": .badRequest, "/docs/..": .badRequest,
            "/docs/...x": .notFound, "/docs/.git/config": .notFound, "site.css": .badRequest, "": .badRequest,
        ])
        guard case .file(let file) = resolver.resolve("//docs///index.html") else { return XCTFail() }
        XCTAssertTrue(file.path.hasSuffix("/docs/index.html"))
        guard case .file(let css) = resolver.resolve("/site.css//") else { return XCTFail() }
        XCTAssertTrue(css.path.hasSuffix("/site.css"))
    }

    /// A link right in the root is followed when it stays inside, and its target is served.
    func testLinksInsideTheRootAreServed() throws {
        try FileManager.default.createSymbolicLink(atPath: base + "/www/style.css", withDestinationPath: "site.css")
        try FileManager.default.createSymbolicLink(atPath: base + "/www/manual", withDestinationPath: "docs")
        guard case .file(let file) = resolver.resolve("/style.css") else { return XCTFail() }
        XCTAssertTrue(file.path.hasSuffix("/www/site.css"))
        guard case .file(let index) = resolver.resolve("/manual/") else { return XCTFail() }
        XCTAssertTrue(index.path.hasSuffix("/www/docs/index.html"))
    }

    /// A folder whose name starts like the root's is outside it.
    func testASiblingOfTheRootIsOutside() throws {
        try FileManager.default.createDirectory(atPath: base + "/www2", withIntermediateDirectories: true)
        try "twin".write(toFile: base + "/www2/twin.txt", atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: base + "/www/twin.txt", withDestinationPath: base + "/www2/twin.txt")
        XCTAssertEqual(resolver.resolve("/twin.txt"), .notFound)
    }

    /// Dates and entity tags are written byte by byte; they must read as the formatting they
    /// replace wrote them.
    func testDatesAndEntityTags() {
        XCTAssertEqual(HTTPDate.format(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT")
        XCTAssertEqual(HTTPDate.format(0), "Thu, 01 Jan 1970 00:00:00 GMT")
        XCTAssertEqual(HTTPDate.format(-1), "Wed, 31 Dec 1969 23:59:59 GMT")
        XCTAssertEqual(HTTPDate.format(253_402_300_799), "Fri, 31 Dec 9999 23:59:59 GMT")
        XCTAssertEqual(HTTPDate.format(253_402_300_800), "Sat, 01 Jan 10000 00:00:00 GMT")
        XCTAssertEqual(HTTPDate.format(-62_135_596_800), "Mon, 01 Jan 0001 00:00:00 GMT")
        for (size, modified) in [(0, Int64(0)), (6, 1_700_000_000_123_456_789), (Int.max, Int64.max), (15, -1), (16, Int64.min + 1)] {
            XCTAssertEqual(
                StaticFile.etag(size: size, modified: modified),
                "\"\(String(size, radix: 16))-\(String(modified, radix: 16))\"")
        }
    }
}
