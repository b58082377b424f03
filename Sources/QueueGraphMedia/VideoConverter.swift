import CFFmpeg
import QueueGraphCore
import QueueGraphRender

/// Converts frames to another pixel format and size with libswscale
/// (bicubic), sliced across `threads` threads (the graph files'
/// `videoconvert` and `videoscale`). Each frame goes into a new buffer from
/// the queue's creator (use `buffers: upstream`), keeping its job and
/// timing; a frame already in the asked format and size passes unchanged.
///
/// Threading: as `BufferProcessor`; `negotiate` on the thread that creates the graph.
public final class VideoConverter: BufferProcessor, FormatAware, FailureReporting {
    /// The pixel format to make; nil keeps each frame's.
    public let pixelFormat: PixelFormat?
    /// The size to make; nil keeps each frame's.
    public let width: Int?
    public let height: Int?
    public private(set) var failureReason: String?
    private let scaler: Scaler
    private let source = DecodedFrame()
    private let target = DecodedFrame()
    private let lender = Lender()

    public init(pixelFormat: PixelFormat?, width: Int?, height: Int?, threads: Int = 0) {
        (self.pixelFormat, self.width, self.height) = (pixelFormat, width, height)
        scaler = Scaler(threads: threads)
    }

    public func negotiate(arriving: [LinkFormat]) throws(FormatRefusal) -> [LinkFormat] {
        try FormatRefusal.check(arriving, "video") { if case .video = $0 { true } else { false } }
        guard case .video(var video)? = arriving.first else { return [.video(VideoFormat(pixelFormat, width: width, height: height))] }
        video.pixelFormat = pixelFormat ?? video.pixelFormat
        video.width = width ?? video.width
        video.height = height ?? video.height
        return [.video(video)]
    }

    public func process(_ buffer: Buffer, context: ProcessContext) -> ProcessResult {
        guard let input = Frame(buffer) else { return .failed }
        let (format, w, h) = (pixelFormat ?? input.pixelFormat, width ?? input.width, height ?? input.height)
        if format == input.pixelFormat && w == input.width && h == input.height {
            passOn(buffer, context: context)
            return .ok
        }
        guard let out = context.acquireBuffer(size: Frame.byteCount(width: w, height: h, format: format)) else {
            if failureReason == nil { failureReason = "no output buffer (its creator has none free; use 'buffers: upstream')" }
            return .failed
        }
        let output = Frame.make(in: out, width: w, height: h, format: format, job: input.job)
        (output.pts, output.duration, output.timeBase) = (input.pts, input.duration, input.timeBase)
        out.timestamp = buffer.timestamp
        input.lend(to: source.pointer, lender: lender)
        output.lend(to: target.pointer, lender: lender)
        defer {
            lender.takeBack(source.pointer)
            lender.takeBack(target.pointer)
        }
        do throws(MediaError) { try scaler.scale(source.pointer, into: target.pointer) } catch {
            if failureReason == nil { failureReason = "\(error)" }
            context.doneBuffer(out)
            return .failed
        }
        context.doneBuffer(buffer)
        passOn(out, context: context)
        return .ok
    }
}
