import NIOCore
import XCTest

@testable import MoonwireLua

/// The multipart reader fed in every chunking, and the rules that keep uploaded files inside
/// their folder.
final class UploadFormTests: XCTestCase {
    private let body =
        "--b1\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n"
        + "--b1\r\nContent-Disposition: form-data; name=\"doc\"; filename=\"x;y.txt\"\r\nContent-Type: text/plain\r\n\r\n"
        + "line\r\n\r\n--b\r\n-\r\r\n"
        + "--b1--\r\n"

    /// Feeds `text` in pieces of `size` bytes; returns the events with contents joined.
    private func parse(_ text: String, pieces size: Int) throws -> [String] {
        let reader = MultipartFormReader(boundary: "b1")
        var events: [String] = []
        let bytes = Array(text.utf8)
        for start in stride(from: 0, to: bytes.count, by: size) {
            for event in try reader.feed(ByteBuffer(bytes: bytes[start..<min(start + size, bytes.count)])) {
                switch event {
                case .partBegan(let name, let filename, let type):
                    events.append("begin \(name) \(filename ?? "-") \(type ?? "-")")
                case .content(let buffer):
                    if let last = events.last, last.hasPrefix("content ") {
                        events[events.count - 1] = last + String(buffer: buffer)
                    } else {
                        events.append("content " + String(buffer: buffer))
                    }
                case .partEnded:
                    events.append("end")
                }
            }
        }
        try reader.finish()
        return events
    }

    func testEveryChunkingGivesTheSameParts() throws {
        let expected = ["begin a - -", "content 1", "end", "begin doc x;y.txt text/plain", "content line\r\n\r\n--b\r\n-\r", "end"]
        for size in [1, 2, 3, 7, 64, 4096] {
            XCTAssertEqual(try parse(body, pieces: size), expected, "pieces of \(size)")
        }
    }

    func testABodyWithoutItsClosingDelimiterIsRefused() {
        let cut = String(body.prefix(120))
        XCTAssertThrowsError(try parse(cut, pieces: 10))
        XCTAssertThrowsError(try parse("", pieces: 10))
    }

    func testAPartWithoutADispositionIsRefused() {
        XCTAssertThrowsError(try parse("--b1\r\nContent-Type: text/plain\r\n\r\nx\r\n--b1--\r\n", pieces: 5))
    }

    func testBoundaries() {
        XCTAssertEqual(MultipartFormReader.boundary(ofContentType: "multipart/form-data; boundary=abc"), "abc")
        XCTAssertEqual(MultipartFormReader.boundary(ofContentType: "Multipart/Form-Data;boundary=\"a b\""), "a b")
        XCTAssertNil(MultipartFormReader.boundary(ofContentType: "multipart/form-data"))
        XCTAssertNil(MultipartFormReader.boundary(ofContentType: "multipart/form-data; boundary="))
        XCTAssertNil(MultipartFormReader.boundary(ofContentType: "text/plain; boundary=abc"))
        XCTAssertNil(MultipartFormReader.boundary(ofContentType: "multipart/form-data; boundary=" + String(repeating: "x", count: 71)))
    }

    func testDispositions() {
        XCTAssertTrue(MultipartFormReader.formDataDisposition("form-data; name=\"f\"; filename=\"a\\\"b.txt\"")! == ("f", "a\"b.txt"))
        XCTAssertTrue(MultipartFormReader.formDataDisposition("form-data; name=plain")! == ("plain", nil))
        XCTAssertNil(MultipartFormReader.formDataDisposition("attachment; name=\"f\""))
        XCTAssertNil(MultipartFormReader.formDataDisposition("form-data; filename=\"a\""))
    }

    func testClientFileNamesAreCleaned() {
        XCTAssertEqual(UploadPaths.sanitize("../../etc/passwd"), "passwd")
        XCTAssertEqual(UploadPaths.sanitize("C:\\Users\\me\\report.pdf"), "report.pdf")
        XCTAssertEqual(UploadPaths.sanitize("a\u{0}b\u{1}c.txt"), "abc.txt")
        XCTAssertEqual(UploadPaths.sanitize(".."), "file")
        XCTAssertEqual(UploadPaths.sanitize(""), "file")
        XCTAssertEqual(UploadPaths.sanitize("/"), "file")
        XCTAssertEqual(UploadPaths.sanitize(".bashrc"), "bashrc")
        XCTAssertEqual(UploadPaths.sanitize("nul.txt"), "_nul.txt")
        XCTAssertEqual(UploadPaths.sanitize("COM1"), "_COM1")
        XCTAssertEqual(UploadPaths.sanitize("what?.txt"), "what.txt")
        XCTAssertEqual(UploadPaths.sanitize(String(repeating: "é", count: 100)).utf8.count, 120)
    }

    func testDefaultPathsStayInTheFolderAndDiffer() {
        let first = UploadPaths.defaultPath(in: "/srv/up", clientName: "../x.txt")
        let second = UploadPaths.defaultPath(in: "/srv/up", clientName: "../x.txt")
        XCTAssertTrue(first.hasPrefix("/srv/up/") && first.hasSuffix("-x.txt"))
        XCTAssertFalse(first.dropFirst(8).contains("/"))
        XCTAssertNotEqual(first, second)
    }

    func testChosenPathsMustStayInTheFolder() {
        XCTAssertEqual(UploadPaths.resolve("a/b.txt", in: "/srv/up"), "/srv/up/a/b.txt")
        XCTAssertEqual(UploadPaths.resolve("./a/../b.txt", in: "/srv/up"), "/srv/up/b.txt")
        XCTAssertEqual(UploadPaths.resolve("/srv/up/c.txt", in: "/srv/up"), "/srv/up/c.txt")
        XCTAssertNil(UploadPaths.resolve("../x", in: "/srv/up"))
        XCTAssertNil(UploadPaths.resolve("/etc/passwd", in: "/srv/up"))
        XCTAssertNil(UploadPaths.resolve("/srv/upper/x", in: "/srv/up"))
        XCTAssertNil(UploadPaths.resolve(".", in: "/srv/up"))
        XCTAssertNil(UploadPaths.resolve("a\u{0}b", in: "/srv/up"))
    }
}
