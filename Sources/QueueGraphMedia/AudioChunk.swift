import QueueGraphCore

/// Audio in a `Buffer`: a 64-byte header (sample format, rate, channels,
/// sample count, timing), then the samples: one plane per channel for a
/// planar format, else one plane of interleaved channels, each plane's
/// start 64-byte aligned. The audio counterpart of the render module's
/// `Frame`, self-describing in the same way.
///
/// `AudioChunk` is a view: copying it copies the pointer. Threading: the
/// thread that holds the buffer.
public struct AudioChunk {
    struct Header {
        var magic: UInt32
        var format: Int32
        var rate: Int32
        var channels: Int32
        var samples: Int32
        var timeBase: (Int32, Int32)
        var pts: Int64
        var duration: Int64
        /// Nanoseconds from the stream's start (the same instant as `pts`).
        var mediaTime: Int64
    }

    static let magic: UInt32 = 0x5147_4155   // "UAGQ"
    /// The header's numbers for sample formats (one array made once: `allCases` makes a new one on every use).
    static let formats = SampleFormat.allCases
    public static let headerSize = 64

    /// The buffer the chunk lives in.
    public let buffer: Buffer
    private let header: UnsafeMutablePointer<Header>

    /// Bytes of samples in one plane.
    static func sampleBytes(format: SampleFormat, channels: Int, samples: Int) -> Int {
        samples * format.bytesPerSample * (format.isPlanar ? 1 : channels)
    }

    /// Where plane `index` starts, from the buffer's start (planes 64-byte aligned).
    static func planeOffset(_ index: Int, format: SampleFormat, channels: Int, samples: Int) -> Int {
        headerSize + index * ((sampleBytes(format: format, channels: channels, samples: samples) + 63) & ~63)
    }

    /// Bytes a buffer needs for `samples` samples of this format.
    public static func byteCount(format: SampleFormat, channels: Int, samples: Int) -> Int {
        planeOffset(format.isPlanar ? channels : 1, format: format, channels: channels, samples: samples)
    }

    /// Reads the chunk in `buffer`; nil when it does not hold one.
    public init?(_ buffer: Buffer) {
        guard buffer.size >= AudioChunk.headerSize, let base = buffer.payload.baseAddress else { return nil }
        header = base.assumingMemoryBound(to: Header.self)
        self.buffer = buffer
        guard header.pointee.magic == AudioChunk.magic, AudioChunk.formats.indices.contains(Int(header.pointee.format)),
              channels > 0, samples >= 0,
              buffer.size >= AudioChunk.byteCount(format: sampleFormat, channels: channels, samples: samples) else { return nil }
    }

    /// Writes a header (samples undefined) into a buffer large enough, and sets its `size`.
    @discardableResult
    public static func make(in buffer: Buffer, format: SampleFormat, rate: Int, channels: Int, samples: Int,
                            timeBase: (Int32, Int32), pts: Int64, mediaTime: Int64) -> AudioChunk {
        let size = byteCount(format: format, channels: channels, samples: samples)
        precondition(buffer.payload.capacity >= size && buffer.payload.baseAddress != nil, "\(samples) samples need \(size) bytes")
        assert(MemoryLayout<Header>.size <= headerSize)
        buffer.size = size
        buffer.payload.baseAddress!.assumingMemoryBound(to: Header.self).initialize(to: Header(
            magic: magic, format: Int32(formats.firstIndex(of: format)!), rate: Int32(rate), channels: Int32(channels),
            samples: Int32(samples), timeBase: timeBase, pts: pts,
            duration: Int64(samples) * Int64(timeBase.1) / (Int64(rate) * Int64(max(1, timeBase.0))), mediaTime: mediaTime))
        return AudioChunk(buffer)!
    }

    public var sampleFormat: SampleFormat { AudioChunk.formats[Int(header.pointee.format)] }
    public var rate: Int { Int(header.pointee.rate) }
    public var channels: Int { Int(header.pointee.channels) }
    /// Samples per channel.
    public var samples: Int { Int(header.pointee.samples) }
    /// The link format this chunk is an instance of.
    public var format: AudioFormat { AudioFormat(sampleFormat, rate: rate, channels: channels) }
    public var pts: Int64 { header.pointee.pts }
    public var duration: Int64 { header.pointee.duration }
    public var timeBase: (numerator: Int32, denominator: Int32) { header.pointee.timeBase }
    public var mediaTime: Int64 { header.pointee.mediaTime }
    public var planeCount: Int { sampleFormat.isPlanar ? channels : 1 }
    /// Bytes of samples in each plane.
    public var bytesPerPlane: Int { AudioChunk.sampleBytes(format: sampleFormat, channels: channels, samples: samples) }

    /// Plane `index`'s first byte.
    public func plane(_ index: Int) -> UnsafeMutablePointer<UInt8> {
        let offset = AudioChunk.planeOffset(index, format: sampleFormat, channels: channels, samples: samples)
        return (UnsafeMutableRawPointer(header) + offset).assumingMemoryBound(to: UInt8.self)
    }

    /// Calls `body` with the planes' addresses, as FFmpeg takes them (in a
    /// temporary on the stack: nothing is allocated per chunk).
    public func withPlanes<R>(_ body: (UnsafeMutablePointer<UnsafePointer<UInt8>?>) -> R) -> R {
        let count = planeCount
        return withUnsafeTemporaryAllocation(of: UnsafePointer<UInt8>?.self, capacity: count) { planes in
            for i in 0..<count { planes[i] = UnsafePointer(plane(i)) }
            return body(planes.baseAddress!)
        }
    }
}
