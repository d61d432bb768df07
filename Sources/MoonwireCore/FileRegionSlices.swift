// Sends a large file region with sendfile in slices of 1 MiB, each written once the one before
// is out. One region of the whole file would leave the connection unwritable until nearly all
// of it was sent, with no sign of progress on the way: the send timeout could then not tell a
// client that downloads slowly from one that takes nothing. Each slice written is that sign.
import NIOCore

/// Writes one file region slice by slice; lives on the channel's loop.
final class FileRegionSlices {
    /// Regions larger than this are sent in slices of this size.
    static let sliceSize = 1 << 20

    /// What the slices need of the exchange that sends them.
    struct Sink {
        /// Writes and flushes a slice; the promise completes once it is out.
        var write: (FileRegion, EventLoopPromise<Void>) -> Void
        /// A slice went out and more follow.
        var progressed: () -> Void
        /// Called once: every slice went out, or the connection ended.
        var finished: (Result<Void, Error>) -> Void
    }

    private let handle: NIOFileHandle
    private var offset: Int
    private let end: Int
    private let eventLoop: EventLoop
    private let sink: Sink

    init(region: FileRegion, eventLoop: EventLoop, sink: Sink) {
        handle = region.fileHandle
        offset = region.readerIndex
        end = region.endIndex
        self.eventLoop = eventLoop
        self.sink = sink
    }

    /// Writes the first slice; the next follows when it is out.
    func start() {
        let sliceEnd = min(offset + Self.sliceSize, end)
        let promise = eventLoop.makePromise(of: Void.self)
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        // A slice's promise may complete inside the write that flushed it: what follows (the
        // next slice, or the answer's end) runs in a turn of its own, not inside that write.
        let loop = eventLoop
        promise.futureResult.whenComplete { result in
            loop.execute { bound.value.sliceWritten(upTo: sliceEnd, result) }
        }
        sink.write(FileRegion(fileHandle: handle, readerIndex: offset, endIndex: sliceEnd), promise)
    }

    private func sliceWritten(upTo sliceEnd: Int, _ result: Result<Void, Error>) {
        switch result {
        case .failure(let error):
            finish(.failure(error))
        case .success where sliceEnd >= end:
            finish(.success(()))
        case .success:
            offset = sliceEnd
            sink.progressed()
            start()
        }
    }

    private func finish(_ result: Result<Void, Error>) {
        try? handle.close()
        sink.finished(result)
    }
}
