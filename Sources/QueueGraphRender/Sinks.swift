import CLibPNG
import QueueGraphCore
#if canImport(Glibc)
import Glibc
#endif

/// Where a render process's output goes (Lumiera's output slot): a file or
/// directory claimed by one sink at a time. A sink releases its slot when
/// the stream ends, and at the latest when the sink goes away, so a slot is
/// always released however the graph stopped.
///
/// Threading: any thread.
public final class OutputSlot: Sendable {
    public let path: String
    private static let claimed = Locked<Set<String>>([])
    private let held = Locked(true)

    /// Claims `path`; nil when another sink holds it.
    public static func claim(_ path: String) -> OutputSlot? {
        claimed.withLock { $0.insert(path).inserted } ? OutputSlot(path: path) : nil
    }

    /// Whether a sink holds `path` now.
    public static func isClaimed(_ path: String) -> Bool { claimed.withLock { $0.contains(path) } }

    private init(path: String) { self.path = path }

    /// Gives the slot up (again is harmless).
    public func release() {
        guard held.withLock({ let was = $0; $0 = false; return was }) else { return }
        _ = OutputSlot.claimed.withLock { $0.remove(path) }
    }

    deinit { release() }
}

/// A sink's failure to write, with the reason (a value; any thread).
public struct OutputError: Error, CustomStringConvertible {
    public let description: String
}

/// Writes frames to a YUV4MPEG2 file (plays in ffplay and mpv): 4:2:0
/// planar YUV, BT.601 limited range, at the render process's frame rate.
/// The conversion goes through a scratch buffer from the engine's provider.
///
/// Threading: its node's thread.
public final class Y4MWriter: FrameWork {
    public let path: String
    public private(set) var framesWritten = 0
    private let slot: OutputSlot?
    private var fd: Int32 = -1
    /// Why the file could not be opened (errno then, not at the first frame).
    private var openError = ""
    private var size: (width: Int, height: Int)?

    public init(path: String) {
        self.path = path
        slot = OutputSlot.claim(path)
        if slot != nil {
            fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            if fd < 0 { openError = String(cString: strerror(errno)) }
        }
    }

    deinit { finish() }

    /// Why no frame can be written now, or nil.
    private var problem: String? {
        if slot == nil { return "'\(path)' is already another sink's output" }
        if fd < 0 { return openError.isEmpty ? "'\(path)' is closed" : "cannot open '\(path)': \(openError)" }
        return nil
    }

    public func prepare() throws {
        if let problem { throw OutputError(description: problem) }
    }

    /// The "FRAME" line and the planes, written from one scratch buffer.
    public func footprint(width: Int, height: Int) -> [BufferDescriptor] { [Self.frame(width: width, height: height)] }

    private static func frame(width: Int, height: Int) -> BufferDescriptor {
        .bytes(frameLine.count + width * height + 2 * ((width + 1) / 2) * ((height + 1) / 2))
    }

    /// What starts each frame in the file.
    private static let frameLine = Array("FRAME\n".utf8)

    /// RGBA frames are converted to I420; I420 and NV12 frames (a GL
    /// read-back's pack conversion) are written plane by plane.
    public static let formats: [PixelFormat] = [.rgba, .i420, .nv12]
    public var pixelFormats: [PixelFormat] { Self.formats }

    /// One `write(2)` per frame ("FRAME" line and planes), so a full disk fails the frame it hit.
    public func render(_ frame: Frame, engine: EngineCtx) throws {
        try prepare()
        let (w, h) = (frame.width, frame.height)
        if let size, size != (w, h) { throw OutputError(description: "frame size changed from \(size.width)×\(size.height) to \(w)×\(h)") }
        if size == nil {
            let rate = frame.job.rate
            var header = "YUV4MPEG2 W\(w) H\(h) F\(rate.numerator):\(rate.denominator) Ip A1:1 C420jpeg\n"
            try check(header.withUTF8 { writeAll(fd, UnsafeRawBufferPointer($0)) })
            size = (w, h)
        }
        let frameLine = Self.frameLine
        let provider = engine.provider
        try provider.withBuffer(Self.frame(width: w, height: h)) { scratch in   // a failed write gives it back through emergencyCleanup
            let bytes = try provider.bytes(scratch)
            bytes.copyBytes(from: frameLine)
            let planes = (bytes.baseAddress! + frameLine.count).assumingMemoryBound(to: UInt8.self)
            if frame.pixelFormat == .rgba { rgbaToI420(frame.pixels, width: w, height: h, into: planes) } else { copyI420(frame, into: planes) }
            try check(writeAll(fd, UnsafeRawBufferPointer(bytes)))
        }
        framesWritten += 1
    }

    private func check(_ error: Int32) throws {
        if error != 0 { throw OutputError(description: "cannot write '\(path)': \(String(cString: strerror(error)))") }
    }

    public func finish() {
        if fd >= 0 { close(fd) }
        fd = -1
        slot?.release()
    }
}

/// An I420 or NV12 frame's planes, unpadded, as I420: Y, then U, then V.
func copyI420(_ frame: Frame, into out: UnsafeMutablePointer<UInt8>) {
    let (w, h) = (frame.width, frame.height)
    let (cw, ch) = ((w + 1) / 2, (h + 1) / 2)
    let luma = frame.plane(0)
    for y in 0..<h { (out + y * w).update(from: luma.bytes + y * luma.stride, count: w) }
    let (u, v) = (out + w * h, out + w * h + cw * ch)
    if frame.pixelFormat == .nv12 {
        let pairs = frame.plane(1)
        for y in 0..<ch {
            let row = pairs.bytes + y * pairs.stride
            for x in 0..<cw { (u[y * cw + x], v[y * cw + x]) = (row[2 * x], row[2 * x + 1]) }
        }
    } else {
        for (i, plane) in [u, v].enumerated() {
            let source = frame.plane(i + 1)
            for y in 0..<ch { (plane + y * cw).update(from: source.bytes + y * source.stride, count: cw) }
        }
    }
}

/// RGBA to planar 4:2:0 (BT.601, limited range); chroma is the mean of each 2×2 block.
func rgbaToI420(_ pixels: UnsafePointer<UInt32>, width w: Int, height h: Int, into out: UnsafeMutablePointer<UInt8>) {
    let (cw, ch) = ((w + 1) / 2, (h + 1) / 2)
    let (u, v) = (out + w * h, out + w * h + cw * ch)
    for y in 0..<h {
        for x in 0..<w {
            let c = channels(pixels[y * w + x])
            out[y * w + x] = UInt8((66 * c[0] + 129 * c[1] + 25 * c[2] + 128) >> 8 + 16)
        }
    }
    for cy in 0..<ch {
        for cx in 0..<cw {
            let (x0, x1) = (2 * cx, min(2 * cx + 1, w - 1))
            let (row0, row1) = (2 * cy * w, min(2 * cy + 1, h - 1) * w)
            let sum = channels(pixels[row0 + x0]) &+ channels(pixels[row0 + x1])
                &+ channels(pixels[row1 + x0]) &+ channels(pixels[row1 + x1])
            let (r, g, b) = ((sum[0] + 2) >> 2, (sum[1] + 2) >> 2, (sum[2] + 2) >> 2)
            u[cy * cw + cx] = UInt8((-38 * r - 74 * g + 112 * b + 128) >> 8 + 128)
            v[cy * cw + cx] = UInt8((112 * r - 94 * g - 18 * b + 128) >> 8 + 128)
        }
    }
}

/// Writes every `every`-th frame (by output tick) as an RGBA PNG,
/// `frame-000042.png`, into a directory, through libpng.
///
/// Threading: its node's thread.
public final class PNGWriter: FrameWork {
    public let directory: String
    public let every: Int
    public private(set) var framesWritten = 0
    private let slot: OutputSlot?
    /// Why the directory could not be made, if so.
    private var mkdirError: String?

    public init(directory: String, every: Int = 1) {
        precondition(every >= 1, "every is at least 1")
        self.directory = directory
        self.every = every
        slot = OutputSlot.claim(directory)
        if mkdir(directory, 0o755) != 0 && errno != EEXIST { mkdirError = String(cString: strerror(errno)) }
    }

    public func prepare() throws {
        guard slot != nil else { throw OutputError(description: "'\(directory)' is already another sink's output") }
        if let mkdirError { throw OutputError(description: "cannot make the directory '\(directory)': \(mkdirError)") }
    }

    public func render(_ frame: Frame, engine: EngineCtx) throws {
        try prepare()
        let tick = frame.job.tick
        guard tick % Int64(every) == 0 else { return }
        let digits = String(tick)
        let path = "\(directory)/frame-\(String(repeating: "0", count: max(0, 6 - digits.count)))\(digits).png"
        try writePNG(path: path, pixels: frame.pixels, width: frame.width, height: frame.height)
        framesWritten += 1
    }

    public func finish() { slot?.release() }
}

/// Writes RGBA pixels (rows packed) as a PNG file with libpng's simplified API.
public func writePNG(path: String, pixels: UnsafePointer<UInt32>, width: Int, height: Int) throws {
    var image = png_image()
    image.version = UInt32(PNG_IMAGE_VERSION)
    image.width = UInt32(width)
    image.height = UInt32(height)
    image.format = UInt32(PNG_FORMAT_FLAG_COLOR | PNG_FORMAT_FLAG_ALPHA)   // PNG_FORMAT_RGBA
    guard png_image_write_to_file(&image, path, 0, pixels, Int32(width * 4), nil) != 0 else {
        let message = withUnsafeBytes(of: image.message) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        throw OutputError(description: "cannot write '\(path)': \(message)")
    }
}

/// Reads a PNG file as RGBA pixels with libpng's simplified API.
public func readPNG(path: String) throws -> (width: Int, height: Int, pixels: [UInt32]) {
    var image = png_image()
    image.version = UInt32(PNG_IMAGE_VERSION)
    func failure() -> OutputError {
        let message = withUnsafeBytes(of: image.message) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        png_image_free(&image)
        return OutputError(description: "cannot read '\(path)': \(message)")
    }
    guard png_image_begin_read_from_file(&image, path) != 0 else { throw failure() }
    image.format = UInt32(PNG_FORMAT_FLAG_COLOR | PNG_FORMAT_FLAG_ALPHA)   // PNG_FORMAT_RGBA
    var pixels = [UInt32](repeating: 0, count: Int(image.width * image.height))
    guard pixels.withUnsafeMutableBytes({ png_image_finish_read(&image, nil, $0.baseAddress, 0, nil) }) != 0 else { throw failure() }
    return (Int(image.width), Int(image.height), pixels)
}

/// Counts the frames it receives in time and releases them (a null output).
///
/// Threading: its node's thread.
public final class NullOutput: FrameWork {
    public private(set) var frames = 0
    public init() {}
    public func render(_ frame: Frame, engine: EngineCtx) { frames += 1 }
}
