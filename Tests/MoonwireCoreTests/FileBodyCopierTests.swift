import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import XCTest

@testable import MoonwireCore

/// What a copier sent, and whether the test lets it send; used on the loop only.
private final class Exchange: @unchecked Sendable {
    var writable = false
    var received = ByteBuffer()
    var copier: FileBodyCopier?
}

final class FileBodyCopierTests: XCTestCase {
    private var group: MultiThreadedEventLoopGroup!
    private var pool: NIOThreadPool!
    private var files: StaticFileService!
    private var path: String!

    override func setUpWithError() throws {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        files = StaticFileService(
            root: NSTemporaryDirectory(), threadPool: pool, descriptors: DescriptorShortage(logger: Logger(label: "test")))
        path = NSTemporaryDirectory() + "moonwire-copier-\(UUID().uuidString)"
        try Data((0..<200_000).map { UInt8(truncatingIfNeeded: $0 * 7) }).write(to: URL(fileURLWithPath: path))
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: path)
        try pool.syncShutdownGracefully()
        try group.syncShutdownGracefully()
    }

    /// Starts a copy of the whole file to a channel that cannot take anything yet; returns the
    /// handle the copy was given and the copy's outcome.
    private func startParked(_ exchange: Exchange) throws -> (NIOFileHandle, EventLoopFuture<Void>) {
        let loop = group.next()
        let finished = loop.makePromise(of: Void.self)
        let handle = try loop.submit { [files, path] in
            var info = stat()
            XCTAssertEqual(stat(path!, &info), 0)
            let file = StaticFile(path: path!, status: info)
            let handle = try NIOFileHandle(_deprecatedPath: path!)
            let sink = FileBodyCopier.Sink(
                write: { exchange.received.writeImmutableBuffer($0) },
                isWritable: { exchange.writable },
                finished: { finished.completeWith($0) })
            let copier = FileBodyCopier(
                file: file, handle: handle, range: 0..<file.size, files: files!, allocator: ByteBufferAllocator(),
                eventLoop: loop, sink: sink)
            exchange.copier = copier
            copier.start()
            return handle
        }.wait()
        return (handle, finished.futureResult)
    }

    private func becomeWritable(_ exchange: Exchange) throws {
        try group.next().submit {
            exchange.writable = true
            exchange.copier?.becameWritable()
        }.wait()
    }

    func testACopyThatCannotSendHoldsNoFileAndResumesWhereItWas() throws {
        let exchange = Exchange()
        let (handle, finished) = try startParked(exchange)
        XCTAssertFalse(try group.next().submit { handle.isOpen }.wait(), "a parked copy closed its file")
        try becomeWritable(exchange)
        try finished.wait()
        let received = try group.next().submit { Data(exchange.received.readableBytesView) }.wait()
        XCTAssertEqual(received, try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    func testAFileThatChangedWhileParkedIsNotResumed() throws {
        let exchange = Exchange()
        let (_, finished) = try startParked(exchange)
        let file = try XCTUnwrap(FileHandle(forWritingAtPath: path))
        file.seekToEndOfFile()
        file.write(Data("more".utf8))
        try file.close()
        try becomeWritable(exchange)
        XCTAssertThrowsError(try finished.wait()) { XCTAssertTrue($0 is FileChanged, "\($0)") }
    }

    func testACancelledCopyReportsOnceAndClosesItsFile() throws {
        let exchange = Exchange()
        let (handle, finished) = try startParked(exchange)
        try group.next().submit { exchange.copier?.cancel() }.wait()
        XCTAssertThrowsError(try finished.wait())
        try becomeWritable(exchange)
        XCTAssertFalse(try group.next().submit { handle.isOpen }.wait())
    }
}
