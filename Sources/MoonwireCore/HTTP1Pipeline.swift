// The handlers of an HTTP/1.1 connection, in order: read timers on raw bytes, NIO's codec
// with our header limits, NIO's pipelining assistant, then our request handler.
import NIOCore
import NIOHTTP1

enum HTTP1Pipeline {
    /// Adds the HTTP/1.1 handlers to a new connection's pipeline.
    static func configure(_ pipeline: ChannelPipeline.SynchronousOperations, environment: ConnectionEnvironment) throws {
        let limits = environment.limits
        let timeouts = HTTPReadTimeouts(limits: limits)
        var decoderLimits = NIOHTTPDecoderLimitConfiguration()
        decoderLimits.maxHeaderFieldSize = limits.maxHeaderSize
        decoderLimits.maxHeaderListSize = limits.maxHeaderSize
        try pipeline.addHandler(timeouts)
        try pipeline.addHandler(HTTPResponseEncoder())
        try pipeline.addHandler(
            ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes, limitConfiguration: decoderLimits)))
        try pipeline.addHandler(HTTPServerPipelineHandler())
        try pipeline.addHandler(HTTP1ConnectionHandler(environment: environment, timeouts: timeouts))
    }
}
