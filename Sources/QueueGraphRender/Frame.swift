import QueueGraphCore

/// A video frame in a `Buffer`: a 128-byte header, then `width × height`
/// RGBA pixels (8 bits per channel, R in the lowest byte of each `UInt32`,
/// rows packed). The header makes a buffer self-describing, so every render
/// node reads the size and the frame job's timing from the buffer itself
/// (like GStreamer's video meta) and a scaler can change the size on the way.
///
/// `Frame` is a view: copying it copies the pointer. Threading: the thread
/// that holds the buffer.
public struct Frame {
    struct Header {
        var magic: UInt32
        var width: Int32
        var height: Int32
        var job: FrameJob
        var gpuImage: UInt64
    }

    static let magic: UInt32 = 0x5147_4652   // "RFGQ"
    /// Bytes before the pixels (the header, padded to keep the pixels cache-line aligned).
    public static let headerSize = 128

    /// The buffer the frame lives in.
    public let buffer: Buffer
    private let header: UnsafeMutablePointer<Header>

    /// Bytes a buffer needs for a frame of this size.
    public static func byteCount(width: Int, height: Int) -> Int { headerSize + width * height * 4 }

    /// Reads the frame in `buffer`; nil when it does not hold one.
    public init?(_ buffer: Buffer) {
        guard buffer.size >= Frame.headerSize, let base = buffer.payload.baseAddress else { return nil }
        header = base.assumingMemoryBound(to: Header.self)
        self.buffer = buffer
        guard header.pointee.magic == Frame.magic, width > 0, height > 0,
              buffer.size >= Frame.byteCount(width: width, height: height) else { return nil }
    }

    /// Writes a new header (pixels undefined) into a buffer of at least
    /// `byteCount(width:height:)` bytes, and sets its `size`.
    @discardableResult
    public static func make(in buffer: Buffer, width: Int, height: Int, job: FrameJob) -> Frame {
        let size = byteCount(width: width, height: height)
        precondition(buffer.payload.capacity >= size && buffer.payload.baseAddress != nil, "a \(width)×\(height) frame needs \(size) bytes")
        assert(MemoryLayout<Header>.size <= headerSize)
        buffer.size = size
        buffer.sequence = UInt64(bitPattern: job.tick)
        buffer.timestamp = job.deadline
        buffer.payload.baseAddress!.assumingMemoryBound(to: Header.self)
            .initialize(to: Header(magic: magic, width: Int32(width), height: Int32(height), job: job, gpuImage: 0))
        return Frame(buffer)!
    }

    public var width: Int { Int(header.pointee.width) }
    public var height: Int { Int(header.pointee.height) }
    public var pixelCount: Int { width * height }
    /// The frame job this frame belongs to.
    public var job: FrameJob { header.pointee.job }
    /// Where the frame's current image lives on the GPU (a GL owner's
    /// texture token, see `QueueGraphGL`), 0 when only the pixels hold it.
    public var gpuImage: UInt64 {
        get { header.pointee.gpuImage }
        nonmutating set { header.pointee.gpuImage = newValue }
    }
    /// The pixels, row after row.
    public var pixels: UnsafeMutablePointer<UInt32> {
        (UnsafeMutableRawPointer(header) + Frame.headerSize).assumingMemoryBound(to: UInt32.self)
    }
    public var pixelBuffer: UnsafeMutableBufferPointer<UInt32> { UnsafeMutableBufferPointer(start: pixels, count: pixelCount) }
}

/// One frame of a render process's output: which media frame to render,
/// for which output tick, and by when (Lumiera's frame job).
///
/// Threading: a value; any thread.
public struct FrameJob: Sendable, Equatable {
    /// The output tick (0, 1, 2 …), one per dispatched frame.
    public var tick: Int64
    /// The media frame number the tick shows (quantised media time).
    public var number: Int64
    /// Media time in nanoseconds (before quantisation).
    public var mediaTime: Int64
    /// Monotonic nanoseconds by which the frame must be delivered.
    public var deadline: UInt64
    /// The compositor input it feeds.
    public var layer: Int
    public var rate: FrameRate

    public init(tick: Int64, number: Int64, mediaTime: Int64, deadline: UInt64, layer: Int = 0, rate: FrameRate) {
        self.tick = tick
        self.number = number
        self.mediaTime = mediaTime
        self.deadline = deadline
        self.layer = layer
        self.rate = rate
    }

    /// `HH:MM:SS:FF` of the media frame number.
    public var timecode: String {
        let fps = max(1, Int((Double(rate.numerator) / Double(rate.denominator)).rounded()))
        let n = abs(Int(number))
        let seconds = n / fps
        func two(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return (number < 0 ? "-" : "") + "\(two(seconds / 3600)):\(two(seconds / 60 % 60)):\(two(seconds % 60)):\(two(n % fps))"
    }
}

/// Frames per second as a fraction (30000/1001 for NTSC).
///
/// Threading: a value; any thread.
public struct FrameRate: Sendable, Hashable, CustomStringConvertible {
    public let numerator: Int
    public let denominator: Int

    public init(_ numerator: Int, _ denominator: Int = 1) {
        precondition(numerator > 0 && denominator > 0, "a frame rate must be positive")
        self.numerator = numerator
        self.denominator = denominator
    }

    /// Nanoseconds per frame (rounded down).
    public var period: Int64 { Int64(1_000_000_000) * Int64(denominator) / Int64(numerator) }

    /// The frame that shows at `time` nanoseconds: frame n covers
    /// [n·period, (n+1)·period); negative times give negative frames.
    public func frame(at time: Int64) -> Int64 {
        let scaled = time.multipliedFullWidth(by: Int64(numerator))
        let (q, r) = Int64(1_000_000_000 * denominator).dividingFullWidth(scaled)
        return r < 0 ? q - 1 : q
    }

    /// The first nanosecond of frame `n` (its exact start, rounded up).
    public func time(of frame: Int64) -> Int64 {
        let scaled = frame.multipliedFullWidth(by: Int64(1_000_000_000 * denominator))
        let (q, r) = Int64(numerator).dividingFullWidth(scaled)
        return r > 0 ? q + 1 : q
    }

    public var description: String { denominator == 1 ? "\(numerator) fps" : "\(numerator)/\(denominator) fps" }
}
