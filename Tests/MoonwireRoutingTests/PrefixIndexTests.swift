// The trie behind the route index: candidates come out in registration order even when they
// sit at different depths, and only routes whose prefix the path has are offered.
@testable import MoonwireRouting
import XCTest

final class PrefixIndexTests: XCTestCase {
    private func candidates(_ index: PrefixIndex, _ path: String, stopAt stop: Int? = nil) -> [Int] {
        var found: [Int] = []
        Array(path.utf8).withUnsafeBytes { bytes in
            index.forEachCandidate(in: bytes) { route in
                found.append(route)
                return route == stop
            }
        }
        return found
    }

    func testCandidatesAtSeveralDepthsMergeInRouteOrder() {
        let prefixes = ["/a/b", "", "/a", "/a/b", "/", "/b", "/a/bc"].map { Array($0.utf8) }
        let index = PrefixIndex(prefixes: prefixes)
        XCTAssertEqual(candidates(index, "/a/b/c"), [0, 1, 2, 3, 4])
        XCTAssertEqual(candidates(index, "/a/bc"), [0, 1, 2, 3, 4, 6])
        XCTAssertEqual(candidates(index, "/x"), [1, 4])
        XCTAssertEqual(candidates(index, ""), [1])
        XCTAssertEqual(candidates(index, "/a/b/c", stopAt: 2), [0, 1, 2], "stops when asked")
    }

    func testEmptyIndexOffersNothing() {
        XCTAssertEqual(candidates(PrefixIndex(prefixes: []), "/anything"), [])
    }

    func testManySiblingsAreFoundByBinarySearch() {
        let prefixes = (0..<256).map { [UInt8(ascii: "/"), UInt8($0)] }
        let index = PrefixIndex(prefixes: prefixes)
        for byte in [0, 1, 127, 128, 254, 255] {
            var found: [Int] = []
            [UInt8(ascii: "/"), UInt8(byte), 0x41].withUnsafeBytes { bytes in
                index.forEachCandidate(in: bytes) { route in
                    found.append(route)
                    return false
                }
            }
            XCTAssertEqual(found, [byte])
        }
    }
}
