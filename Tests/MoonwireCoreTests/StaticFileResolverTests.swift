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
        XCTAssertEqual(resolver.resolve("/../secret.txt"), .badRequest)
        XCTAssertEqual(resolver.resolve("/docs/../../secret.txt"), .badRequest)
        XCTAssertEqual(resolver.resolve("/..\\secret.txt"), .badRequest)
        XCTAssertEqual(resolver.resolve("/a\u{0}b"), .badRequest)
        XCTAssertEqual(resolver.resolve("/escape.txt"), .notFound)
        XCTAssertEqual(resolver.resolve("/.env"), .notFound)
        XCTAssertEqual(resolver.resolve("/missing"), .notFound)
    }

    func testMIMEFallback() {
        XCTAssertEqual(MIMETypes.type(forPath: "/a/b"), "application/octet-stream")
        XCTAssertEqual(MIMETypes.type(forPath: "/x.PNG"), "image/png")
        XCTAssertEqual(MIMETypes.type(forPath: "/a.d/b"), "application/octet-stream")
    }
}
