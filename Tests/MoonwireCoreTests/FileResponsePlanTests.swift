import NIOHTTP1
import XCTest

@testable import MoonwireCore

final class FileResponsePlanTests: XCTestCase {
    private var file: StaticFile {
        var info = stat()
        info.st_size = 1000
        info.st_mtim = timespec(tv_sec: 784_111_777, tv_nsec: 5)
        return StaticFile(path: "/www/a.txt", status: info)
    }

    private func plan(_ headers: [(String, String)], ranges: Bool = true) -> FileResponsePlan {
        FileResponsePlan(file: file, headers: HTTPHeaders(headers), rangesAllowed: ranges)
    }

    func testUnconditionalRequests() {
        XCTAssertTrue(FileResponsePlan.isUnconditional(["Host": "x", "Accept-Encoding": "gzip"]))
        for name in ["If-Match", "if-unmodified-since", "IF-NONE-MATCH", "If-Modified-Since", "range"] {
            XCTAssertFalse(FileResponsePlan.isUnconditional(["Host": "x", name: "*"]), name)
        }
    }

    func testRanges() {
        XCTAssertEqual(plan([("Range", "bytes=0-99")]), .partial(0...99))
        XCTAssertEqual(plan([("Range", "bytes=900-")]), .partial(900...999))
        XCTAssertEqual(plan([("Range", "bytes=-100")]), .partial(900...999))
        XCTAssertEqual(plan([("Range", "bytes=-5000")]), .partial(0...999))
        XCTAssertEqual(plan([("Range", "bytes=990-5000")]), .partial(990...999))
        XCTAssertEqual(plan([("Range", "bytes=1000-")]), .unsatisfiable)
        XCTAssertEqual(plan([("Range", "bytes=-0")]), .unsatisfiable)
        XCTAssertEqual(plan([("Range", "bytes=5-1")]), .whole)
        XCTAssertEqual(plan([("Range", "bytes=0-1,5-6")]), .whole)
        XCTAssertEqual(plan([("Range", "items=0-1")]), .whole)
        XCTAssertEqual(plan([("Range", "bytes=abc")]), .whole)
        XCTAssertEqual(plan([("Range", "bytes=0-1")], ranges: false), .whole)
    }

    func testValidators() {
        let etag = file.etag
        XCTAssertEqual(plan([("If-None-Match", etag)]), .notModified)
        XCTAssertEqual(plan([("If-None-Match", "W/\(etag)")]), .notModified)
        XCTAssertEqual(plan([("If-None-Match", "\"other\", \(etag)")]), .notModified)
        XCTAssertEqual(plan([("If-None-Match", "\"other\"")]), .whole)
        XCTAssertEqual(plan([("If-Modified-Since", "Sun, 06 Nov 1994 08:49:37 GMT")]), .notModified)
        XCTAssertEqual(plan([("If-Modified-Since", "Sun, 06 Nov 1994 08:49:36 GMT")]), .whole)
        // If-None-Match wins over If-Modified-Since (RFC 9110 section 13.1.3).
        XCTAssertEqual(plan([("If-None-Match", "\"other\""), ("If-Modified-Since", "Sun, 06 Nov 1994 08:49:37 GMT")]), .whole)
        XCTAssertEqual(plan([("If-Match", "\"other\"")]), .preconditionFailed)
        XCTAssertEqual(plan([("If-Unmodified-Since", "Sun, 06 Nov 1994 08:49:36 GMT")]), .preconditionFailed)
    }

    func testIfRange() {
        XCTAssertEqual(plan([("Range", "bytes=0-9"), ("If-Range", file.etag)]), .partial(0...9))
        XCTAssertEqual(plan([("Range", "bytes=0-9"), ("If-Range", "\"stale\"")]), .whole)
        XCTAssertEqual(plan([("Range", "bytes=0-9"), ("If-Range", "Sun, 06 Nov 1994 08:49:37 GMT")]), .partial(0...9))
        XCTAssertEqual(plan([("Range", "bytes=0-9"), ("If-Range", "Sun, 06 Nov 1994 08:49:38 GMT")]), .whole)
    }

    func testDateForms() {
        XCTAssertEqual(HTTPDate.parse("Sun, 06 Nov 1994 08:49:37 GMT"), 784_111_777)
        XCTAssertEqual(HTTPDate.parse("Sunday, 06-Nov-94 08:49:37 GMT"), 784_111_777)
        XCTAssertEqual(HTTPDate.parse("Sun Nov  6 08:49:37 1994"), 784_111_777)
        XCTAssertNil(HTTPDate.parse("yesterday"))
        XCTAssertEqual(HTTPDate.format(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT")
    }
}
