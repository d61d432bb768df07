import Foundation
import XCTest

@testable import MoonwireCore

/// The Authorization field's parser and Basic credentials (RFC 7617), on good and bad input.
final class HTTPAuthorizationTests: XCTestCase {
    private func basic(_ text: String) -> String {
        "Basic " + Data(text.utf8).base64EncodedString()
    }

    /// The scheme and credentials of a field, or nil.
    private func split(_ value: String) -> [String]? {
        HTTPAuthorization(value).map { [$0.scheme, $0.credentials] }
    }

    /// The user and password of a field's Basic credentials, or nil.
    private func decode(_ value: String) -> [String]? {
        BasicCredentials(authorization: value).map { [$0.user, $0.password] }
    }

    func testSplitsSchemeAndCredentials() {
        XCTAssertEqual(split("Bearer abc.def.ghi"), ["Bearer", "abc.def.ghi"])
        XCTAssertEqual(split("  Token   a b c  "), ["Token", "a b c"])
        XCTAssertEqual(split("Negotiate"), ["Negotiate", ""])
        XCTAssertTrue(HTTPAuthorization("bAsIc Zm9v")!.isBasic)
        XCTAssertFalse(HTTPAuthorization("Basicx Zm9v")!.isBasic)
        XCTAssertNil(HTTPAuthorization(""))
        XCTAssertNil(HTTPAuthorization("   "))
        XCTAssertNil(HTTPAuthorization("Bad(scheme) x"))
        XCTAssertNil(HTTPAuthorization("\"quoted\" x"))
    }

    func testDecodesUserAndPassword() {
        XCTAssertEqual(decode(basic("alice:secret")), ["alice", "secret"])
        XCTAssertEqual(decode("basic " + Data("a:b".utf8).base64EncodedString()), ["a", "b"])
        XCTAssertEqual(decode(basic(":")), ["", ""])
    }

    func testThePasswordMayHoldColons() {
        XCTAssertEqual(decode(basic("bob:pa:ss:word:")), ["bob", "pa:ss:word:"])
    }

    func testUTF8() {
        XCTAssertEqual(decode(basic("José:пароль😀")), ["José", "пароль😀"])
        let latin1 = Data([0x4A, 0x6F, 0x73, 0xE9, 0x3A, 0x78]).base64EncodedString()  // "José:x" in ISO-8859-1
        XCTAssertNil(BasicCredentials(authorization: "Basic " + latin1))
    }

    func testGarbageIsRefused() {
        for value in [
            "Basic", "Basic ", "Basic !!!!", "Basic Zm9v", "Basic Zm9vOmJhcg", "Basic Zm9v OmJhcg==", "Basic ====",
            "Bearer " + Data("a:b".utf8).base64EncodedString(), "Basic " + Data("a:b\u{0}".utf8).base64EncodedString(),
            "Basic " + Data("a\nb:c".utf8).base64EncodedString(), "Basic " + Data("a:b\u{7F}".utf8).base64EncodedString(),
            "Basic \u{FF}\u{FE}",
        ] {
            XCTAssertNil(BasicCredentials(authorization: value), value)
        }
        for _ in 0..<200 {
            let bytes = (0..<Int.random(in: 0...64)).map { _ in UInt8.random(in: 0...255) }
            let text = String(decoding: bytes, as: UTF8.self)
            if let credentials = BasicCredentials(authorization: "Basic " + text) {
                XCTAssertFalse(credentials.user.contains(":"))
            }
        }
    }

    func testHugeInputIsRefusedBeforeDecoding() {
        let huge = basic("user:" + String(repeating: "p", count: 64 * 1024))
        XCTAssertNil(BasicCredentials(authorization: huge))
        let justFits = "user:" + String(repeating: "p", count: BasicCredentials.maximumLength / 4 * 3 - 5)
        XCTAssertEqual(BasicCredentials(authorization: basic(justFits))?.user, "user")
    }
}
