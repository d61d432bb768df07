import NIOCore
import XCTest

@testable import MoonwireCore

final class DescriptorShortageEpisodeTests: XCTestCase {
    private let start = NIODeadline.uptimeNanoseconds(1_000_000_000)

    func testAnEpisodeIsReportedOnceWhenItStartsAndOnceWhenItEnds() {
        var episode = DescriptorShortageEpisode()
        XCTAssertEqual(episode.accepted(now: start), .none, "no episode: nothing to say")
        XCTAssertEqual(episode.failed(.accept, now: start), .started)
        for i in 1...500 {
            XCTAssertEqual(episode.failed(i % 5 == 0 ? .file : .accept, now: start + .milliseconds(Int64(i))), .none)
        }
        XCTAssertEqual(
            episode.accepted(now: start + .seconds(3)), .ended(seconds: 3, delayedAccepts: 401, refusedFiles: 100))
        XCTAssertEqual(episode.accepted(now: start + .seconds(4)), .none)
    }

    func testTheNextEpisodeIsReportedAgain() {
        var episode = DescriptorShortageEpisode()
        XCTAssertEqual(episode.failed(.file, now: start), .started)
        XCTAssertEqual(episode.accepted(now: start + .seconds(1)), .ended(seconds: 1, delayedAccepts: 0, refusedFiles: 1))
        XCTAssertEqual(episode.failed(.accept, now: start + .seconds(2)), .started)
    }

    func testOnlyALackOfDescriptorsIsAShortage() {
        XCTAssertTrue(DescriptorShortage.isShortage(IOError(errnoCode: EMFILE, reason: "accept")))
        XCTAssertTrue(DescriptorShortage.isShortage(IOError(errnoCode: ENFILE, reason: "open")))
        XCTAssertFalse(DescriptorShortage.isShortage(IOError(errnoCode: ENOENT, reason: "open")))
        XCTAssertFalse(DescriptorShortage.isShortage(ChannelError.ioOnClosedChannel))
    }
}
