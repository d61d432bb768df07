import MoonwireCore
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import XCTest

final class SessionStoreTests: XCTestCase {
    /// A clock the test moves by hand.
    private final class TestClock: Sendable {
        private let now = NIOLockedValueBox(NIODeadline.uptimeNanoseconds(1_000_000_000))
        func advance(_ seconds: Int64) { now.withLockedValue { $0 = $0 + .seconds(seconds) } }
        var read: NIODeadline { now.withLockedValue { $0 } }
    }

    func testIDsAreRandomHex128Bits() {
        let ids = Set((0..<1000).map { _ in SessionStore.newID() })
        XCTAssertEqual(ids.count, 1000)
        for id in ids.prefix(10) {
            XCTAssertEqual(id.utf8.count, 32)
            XCTAssertTrue(id.allSatisfy { $0.isHexDigit })
        }
    }

    func testCreateTouchSaveAndExpireWithSlidingTimeout() throws {
        let clock = TestClock()
        let store = SessionStore(clock: { clock.read })
        let session = try store.create(timeout: 10).get()
        XCTAssertEqual(session.data, .table([:]))
        XCTAssertNoThrow(try store.save(session.id, data: .table([.string(Array("n".utf8)): .integer(1)])).get())
        clock.advance(8)
        XCTAssertEqual(store.touch(session.id, timeout: 10)?.data, .table([.string(Array("n".utf8)): .integer(1)]))
        clock.advance(8)  // 16 s after creation, 8 after the last use: still alive
        XCTAssertNotNil(store.touch(session.id, timeout: 10))
        XCTAssertEqual(store.expire(), [])
        clock.advance(11)
        XCTAssertNil(store.touch(session.id, timeout: 10))
        XCTAssertEqual(store.expire().map(\.id), [session.id])
        XCTAssertEqual(store.count, 0)
        XCTAssertNil(store.touch("unknown", timeout: 10))
    }

    func testRegenerateKeepsDataUnderANewID() throws {
        let store = SessionStore()
        let old = try store.create(timeout: 60).get()
        _ = store.save(old.id, data: .string(Array("kept".utf8)))
        let fresh = try XCTUnwrap(store.regenerate(old.id, timeout: 60))
        XCTAssertNotEqual(fresh.id, old.id)
        XCTAssertEqual(fresh.data, .string(Array("kept".utf8)))
        XCTAssertNil(store.touch(old.id, timeout: 60))
        XCTAssertNil(store.regenerate(old.id, timeout: 60))
    }

    func testDestroyEndsTheSessionAndLaterSavesFail() throws {
        let store = SessionStore()
        let session = try store.create(timeout: 60).get()
        XCTAssertEqual(store.destroy(session.id)?.id, session.id)
        XCTAssertNil(store.destroy(session.id))
        XCTAssertThrowsError(try store.save(session.id, data: .boolean(true)).get()) { XCTAssertEqual($0 as? SessionStore.Refusal, .gone) }
    }

    func testCapsOnSessionsAndDataSize() throws {
        let store = SessionStore(maxSessions: 2, maxDataBytes: 100)
        let first = try store.create(timeout: 60).get()
        _ = try store.create(timeout: 60).get()
        XCTAssertEqual(store.create(timeout: 60).map(\.id), .failure(.full))
        XCTAssertThrowsError(try store.save(first.id, data: .string(Array(repeating: 65, count: 200))).get()) {
            XCTAssertEqual($0 as? SessionStore.Refusal, .tooLarge)
        }
        XCTAssertEqual(store.touch(first.id, timeout: 60)?.data, .table([:]))
        XCTAssertNoThrow(try store.save(first.id, data: .string(Array(repeating: 65, count: 50))).get())
    }

    func testChosenIDsAreValidatedAndNeverShared() throws {
        let store = SessionStore()
        XCTAssertTrue(SessionStore.isAcceptableID("user-42-abcdefghijklmnop"))
        XCTAssertFalse(SessionStore.isAcceptableID("short"))
        XCTAssertFalse(SessionStore.isAcceptableID(String(repeating: "a", count: 129)))
        XCTAssertFalse(SessionStore.isAcceptableID("has space in it here"))
        XCTAssertFalse(SessionStore.isAcceptableID("semi;colon;abcdefghij"))
        XCTAssertFalse(SessionStore.isAcceptableID("é-not-ascii-abcdefghij"))
        _ = try store.create(id: "chosen-id-0123456789", timeout: 60).get()
        XCTAssertEqual(store.create(id: "chosen-id-0123456789", timeout: 60).map(\.id), .failure(.idTaken))
    }

    func testCookieParsing() {
        func value(_ fields: [String]) -> String? {
            SessionCookie.value(named: "MWSESSID", in: HTTPHeaders(fields.map { ("Cookie", $0) }))
        }
        XCTAssertEqual(value(["MWSESSID=abc"]), "abc")
        XCTAssertEqual(value(["a=1; MWSESSID=abc; b=2"]), "abc")
        XCTAssertEqual(value(["a=1", "b=2;MWSESSID = \"abc\" "]), "abc")
        XCTAssertEqual(value(["XMWSESSID=no; MWSESSID=yes"]), "yes")
        XCTAssertNil(value([]))
        XCTAssertNil(value(["MWSESSID="]))
        XCTAssertNil(value(["garbage;;;==;"]))
        XCTAssertNil(value(["MWSESSID=" + String(repeating: "x", count: 10_000)]))
        XCTAssertEqual(value(["MWSESSID=a=b"]), "a=b")
    }

    func testCookieFormatting() {
        let cookie = SessionCookie(name: "MWSESSID", sameSite: "Lax", secure: false)
        XCTAssertEqual(cookie.setCookie("abc"), "MWSESSID=abc; Path=/; HttpOnly; SameSite=Lax")
        let secure = SessionCookie(name: "S", sameSite: "Strict", secure: true)
        XCTAssertEqual(secure.expiredCookie(), "S=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict; Secure")
    }
}
