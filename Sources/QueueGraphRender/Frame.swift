import QueueGraphCore

/// A video frame in a `Buffer`: a 128-byte header, then its planes. The
/// header makes a buffer self-describing, so every node reads the size,
/// pixel format, timing and frame job from the buffer itself (like
/// GStreamer's video meta) and a scaler can change the size on the way.
///
/// RGBA and BGRA frames have one plane of packed rows (8 bits per channel;
/// for RGBA, R in the lowest byte of each `UInt32`): the render nodes'
/// `pixels`. The 4:2:0 formats have their planes one after the other, each
/// row padded to 64 bytes (what libswscale and the encoders read fastest).
///
/// A frame decoded from a file carries its presentation time (`pts`),
/// `duration` and `timeBase` as the file had them; the frame job's
/// `mediaTime` is the same instant in nanoseconds.
///
/// `Frame` is a view: copying it copies the pointer. Threading: the thread
/// that holds the buffer.
public struct Frame {
    struct Header {
        var magic: UInt32
        var width: Int32
        var height: Int32
        var format: Int32
        var job: FrameJob
        var gpuImage: UInt64
        var pts: Int64
        var duration: Int64
        var timeBase: (Int32, Int32)
        /// Each plane's byte offset from the buffer's start, and its bytes per row.
        var offsets: (UInt32, UInt32, UInt32)
        var strides: (UInt32, UInt32, UInt32)
    }

    /// Where a frame's planes lie in its buffer: each plane's byte offset
    /// from the buffer's start (at least `headerSize`) and bytes per row;
    /// 0 for planes the format does not have. A value; any thread.
    public struct Layout: Sendable {
        public var offsets: (Int, Int, Int)
        public var strides: (Int, Int, Int)

        public init(offsets: (Int, Int, Int), strides: (Int, Int, Int)) {
            (self.offsets, self.strides) = (offsets, strides)
        }

        func offset(_ index: Int) -> Int { index == 0 ? offsets.0 : index == 1 ? offsets.1 : offsets.2 }
        func stride(_ index: Int) -> Int { index == 0 ? strides.0 : index == 1 ? strides.1 : strides.2 }

        /// The packed layout `make` uses by default: planes one after the other from `headerSize`.
        public static func packed(width: Int, height: Int, format: PixelFormat) -> Layout {
            let (p0, p1, p2) = (Frame.plane(0, width: width, height: height, format: format),
                                Frame.plane(1, width: width, height: height, format: format),
                                Frame.plane(2, width: width, height: height, format: format))
            let o1 = headerSize + p0.stride * p0.rows
            return Layout(offsets: (headerSize, p1.rows == 0 ? 0 : o1, p2.rows == 0 ? 0 : o1 + p1.stride * p1.rows),
                          strides: (p0.stride, p1.stride, p2.stride))
        }

        /// Bytes from the buffer's start to the end of the last plane's last
        /// row, or nil when a plane starts inside the header or overlaps the
        /// next, or a row is shorter than the format needs.
        func byteCount(width: Int, height: Int, format: PixelFormat) -> Int? {
            var end = headerSize
            for i in 0..<3 {
                let packed = Frame.plane(i, width: width, height: height, format: format)
                guard packed.rows > 0 else { break }
                guard offset(i) >= end, stride(i) >= packed.stride else { return nil }
                end = offset(i) + stride(i) * packed.rows
            }
            return end
        }
    }

    static let magic: UInt32 = 0x5147_4652   // "RFGQ"
    /// Bytes before the pixels (the header, padded to keep the pixels cache-line aligned).
    public static let headerSize = 128

    /// The buffer the frame lives in.
    public let buffer: Buffer
    private let header: UnsafeMutablePointer<Header>

    /// Plane `index`'s bytes per row and rows, as laid out in a frame's buffer
    /// (computed without allocating: `Frame(buffer)` runs on every node).
    static func plane(_ index: Int, width: Int, height: Int, format: PixelFormat) -> (stride: Int, rows: Int) {
        let (cw, ch) = ((width + 1) / 2, (height + 1) / 2)
        func padded(_ bytes: Int) -> Int { (bytes + 63) & ~63 }
        return switch (format, index) {
        case (.rgba, 0), (.bgra, 0): (width * 4, height)
        case (.i420, 0), (.nv12, 0): (padded(width), height)
        case (.i420, 1), (.i420, 2): (padded(cw), ch)
        case (.nv12, 1): (padded(cw * 2), ch)
        default: (0, 0)
        }
    }

    /// The header's number for a pixel format (a switch: `allCases` would allocate).
    private static func code(_ format: PixelFormat) -> Int32 {
        switch format {
        case .rgba: 0
        case .bgra: 1
        case .i420: 2
        case .nv12: 3
        }
    }

    private static func pixelFormat(code: Int32) -> PixelFormat? {
        switch code {
        case 0: .rgba
        case 1: .bgra
        case 2: .i420
        case 3: .nv12
        default: nil
        }
    }

    /// Bytes a buffer needs for a packed frame of this size and format.
    public static func byteCount(width: Int, height: Int, format: PixelFormat = .rgba) -> Int {
        var bytes = headerSize
        for i in 0..<3 { let p = plane(i, width: width, height: height, format: format); bytes += p.stride * p.rows }
        return bytes
    }

    /// The frame's layout, read from its header.
    public var layout: Layout {
        let h = header.pointee
        return Layout(offsets: (Int(h.offsets.0), Int(h.offsets.1), Int(h.offsets.2)),
                      strides: (Int(h.strides.0), Int(h.strides.1), Int(h.strides.2)))
    }

    /// Reads the frame in `buffer`; nil when it does not hold one.
    public init?(_ buffer: Buffer) {
        guard buffer.size >= Frame.headerSize, let base = buffer.payload.baseAddress else { return nil }
        header = base.assumingMemoryBound(to: Header.self)
        self.buffer = buffer
        guard header.pointee.magic == Frame.magic, width > 0, height > 0,
              let format = Frame.pixelFormat(code: header.pointee.format),
              let size = layout.byteCount(width: width, height: height, format: format), buffer.size >= size else { return nil }
    }

    /// Writes a new header (pixels undefined, or already written where
    /// `layout` says) into a buffer and sets its `size`: by default the
    /// planes are packed (`byteCount(width:height:format:)` bytes). RGBA and
    /// BGRA frames are always packed (the render nodes' `pixels`). The media
    /// timing starts as the job's: `mediaTime` in nanoseconds.
    @discardableResult
    public static func make(in buffer: Buffer, width: Int, height: Int, format: PixelFormat = .rgba, job: FrameJob, layout: Layout? = nil) -> Frame {
        let layout = layout ?? .packed(width: width, height: height, format: format)
        let size = layout.byteCount(width: width, height: height, format: format)
        precondition(size != nil && (format.isYUV || layout.strides.0 == width * 4), "a \(width)×\(height) \(format) frame cannot have the layout \(layout)")
        precondition(buffer.payload.capacity >= size! && buffer.payload.baseAddress != nil, "a \(width)×\(height) \(format) frame needs \(size!) bytes")
        assert(MemoryLayout<Header>.size <= headerSize)
        buffer.size = size!
        buffer.sequence = UInt64(bitPattern: job.tick)
        buffer.timestamp = job.deadline
        let (o, s) = (layout.offsets, layout.strides)
        buffer.payload.baseAddress!.assumingMemoryBound(to: Header.self).initialize(to: Header(
            magic: magic, width: Int32(width), height: Int32(height), format: code(format),
            job: job, gpuImage: 0, pts: job.mediaTime, duration: job.rate.period, timeBase: (1, 1_000_000_000),
            offsets: (UInt32(o.0), UInt32(o.1), UInt32(o.2)), strides: (UInt32(s.0), UInt32(s.1), UInt32(s.2))))
        return Frame(buffer)!
    }

    public var width: Int { Int(header.pointee.width) }
    public var height: Int { Int(header.pointee.height) }
    public var pixelCount: Int { width * height }
    public var pixelFormat: PixelFormat { Frame.pixelFormat(code: header.pointee.format).unsafelyUnwrapped }
    /// The frame job this frame belongs to.
    public var job: FrameJob { header.pointee.job }
    /// Where the frame's current image lives on the GPU (a GL owner's
    /// texture token, see `QueueGraphGL`), 0 when only the pixels hold it.
    public var gpuImage: UInt64 {
        get { header.pointee.gpuImage }
        nonmutating set { header.pointee.gpuImage = newValue }
    }
    /// Presentation time in `timeBase` units.
    public var pts: Int64 {
        get { header.pointee.pts }
        nonmutating set { header.pointee.pts = newValue }
    }
    /// How long the frame shows, in `timeBase` units.
    public var duration: Int64 {
        get { header.pointee.duration }
        nonmutating set { header.pointee.duration = newValue }
    }
    /// Seconds per unit of `pts` and `duration`, as numerator and denominator.
    public var timeBase: (numerator: Int32, denominator: Int32) {
        get { header.pointee.timeBase }
        nonmutating set { header.pointee.timeBase = newValue }
    }

    /// How many planes the pixel format has.
    public var planeCount: Int {
        switch pixelFormat {
        case .rgba, .bgra: 1
        case .nv12: 2
        case .i420: 3
        }
    }
    /// Plane `index`: its first byte and bytes per row.
    public func plane(_ index: Int) -> (bytes: UnsafeMutablePointer<UInt8>, stride: Int) {
        let layout = layout
        return ((UnsafeMutableRawPointer(header) + layout.offset(index)).assumingMemoryBound(to: UInt8.self), layout.stride(index))
    }

    /// The pixels of an RGBA or BGRA frame, row after row.
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
