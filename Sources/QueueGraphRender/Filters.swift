#if canImport(Glibc)
import Glibc
#endif
import QueueGraphCore

/// The four channels of a pixel as integers, for filter arithmetic.
@inline(__always)
func channels(_ pixel: UInt32) -> SIMD4<Int32> {
    SIMD4<Int32>(truncatingIfNeeded: unsafeBitCast(pixel, to: SIMD4<UInt8>.self))
}

/// Packs channels (each 0…255) back into a pixel.
@inline(__always)
func pixel(_ c: SIMD4<Int32>) -> UInt32 {
    unsafeBitCast(SIMD4<UInt8>(truncatingIfNeeded: c), to: UInt32.self)
}

/// A separable blur: `pass` horizontally into a scratch frame locked from
/// the engine's provider, then vertically back into the frame. `pass` blurs
/// `count` pixels spaced `stride` apart from a source into a target with
/// the same spacing; edges repeat the outermost pixel.
func blurSeparably(_ frame: Frame, engine: EngineCtx,
                   pass: (UnsafePointer<UInt32>, UnsafeMutablePointer<UInt32>, _ count: Int, _ stride: Int) -> Void) throws {
    let (w, h) = (frame.width, frame.height)
    let provider = engine.provider
    try provider.withBuffer(blurScratch(width: w, height: h)) { scratch in
        let temp = try provider.bytes(scratch).baseAddress!.assumingMemoryBound(to: UInt32.self)
        let pixels = frame.pixels
        for y in 0..<h { pass(pixels + y * w, temp + y * w, w, 1) }
        for x in 0..<w { pass(temp + x, pixels + x, h, w) }
    }
}

/// The scratch frame `blurSeparably` locks (the blurs' footprint).
func blurScratch(width: Int, height: Int) -> BufferDescriptor { .bytes(width * height * 4) }

/// Box blur of `radius` (each pixel becomes the mean of the (2r+1)² around
/// it), by running sums: the cost does not grow with the radius.
///
/// Threading: its node's thread.
public final class BoxBlur: FrameWork, LiveFrameWork {
    public private(set) var radius: Int
    private var scale: Int32

    public init(radius: Int) {
        precondition(radius >= 1, "a blur radius is at least 1")
        self.radius = radius
        scale = Int32((65536 / Double(2 * radius + 1)).rounded())
    }

    public func setParameter(_ name: String, to value: ParameterValue) {
        guard name == "radius", case .integer(let radius) = value, radius >= 1 else { return }
        self.radius = radius
        scale = Int32((65536 / Double(2 * radius + 1)).rounded())
    }

    public func render(_ frame: Frame, engine: EngineCtx) throws { try blurSeparably(frame, engine: engine, pass: pass) }
    public func footprint(width: Int, height: Int) -> [BufferDescriptor] { [blurScratch(width: width, height: height)] }

    func pass(_ source: UnsafePointer<UInt32>, _ target: UnsafeMutablePointer<UInt32>, count: Int, stride: Int) {
        let last = count - 1
        @inline(__always) func at(_ i: Int) -> SIMD4<Int32> { channels(source[min(max(i, 0), last) * stride]) }
        var sum = SIMD4<Int32>.zero
        for i in -radius...radius { sum &+= at(i) }
        let (scale, half) = (SIMD4<Int32>(repeating: self.scale), SIMD4<Int32>(repeating: 1 << 15))
        for i in 0..<count {
            target[i * stride] = pixel((sum &* scale &+ half) &>> 16)
            sum &+= at(i + radius + 1) &- at(i - radius)
        }
    }
}

/// Gaussian blur of standard deviation `sigma` (kernel radius ⌈3σ⌉, integer
/// weights summing to 2¹⁶).
///
/// Threading: its node's thread.
public final class GaussianBlur: FrameWork {
    public let sigma: Double
    private let weights: [Int32]

    public init(sigma: Double) {
        precondition(sigma > 0, "sigma must be positive")
        self.sigma = sigma
        let radius = Int((3 * sigma).rounded(.up))
        let raw: [Double] = (-radius...radius).map { (x: Int) -> Double in exp(-Double(x * x) / (2 * sigma * sigma)) }
        let total = raw.reduce(0, +)
        var weights = raw.map { Int32(($0 / total * 65536).rounded()) }
        weights[radius] += 65536 - weights.reduce(0, +)   // rounding: the sum stays exact
        self.weights = weights
    }

    public func render(_ frame: Frame, engine: EngineCtx) throws { try blurSeparably(frame, engine: engine, pass: pass) }
    public func footprint(width: Int, height: Int) -> [BufferDescriptor] { [blurScratch(width: width, height: height)] }

    func pass(_ source: UnsafePointer<UInt32>, _ target: UnsafeMutablePointer<UInt32>, count: Int, stride: Int) {
        let radius = weights.count / 2
        let last = count - 1
        weights.withUnsafeBufferPointer { weights in
            for i in 0..<count {
                var sum = SIMD4<Int32>(repeating: 1 << 15)
                for k in 0..<weights.count {
                    sum &+= channels(source[min(max(i + k - radius, 0), last) * stride]) &* weights[k]
                }
                target[i * stride] = pixel(sum &>> 16)
            }
        }
    }
}

/// Multiplies every pixel's RGB by a 3×4 matrix (the last column an offset
/// in 0…255 units); alpha is kept. Presets: greyscale, sepia, saturation.
///
/// Threading: its node's thread.
public final class ColourMatrix: FrameWork {
    /// Rows for R, G and B: (r, g, b, offset) weights.
    public let rows: [SIMD4<Float>]
    private let fixed: [SIMD4<Int32>]

    public init(rows: [SIMD4<Float>]) {
        precondition(rows.count == 3, "a colour matrix has three rows")
        self.rows = rows
        // 8.8 fixed point against (r, g, b, 256): the weights × 256, the offset × 1.
        fixed = rows.map { SIMD4<Int32>(($0 * SIMD4(256, 256, 256, 1)).rounded(.toNearestOrEven)) }
    }

    /// `amount` 0 keeps the colours, 1 is fully grey (Rec. 601 luma).
    public static func greyscale(_ amount: Float = 1) -> ColourMatrix { saturation(1 - amount) }

    /// Sepia toning mixed in by `amount`.
    public static func sepia(_ amount: Float = 1) -> ColourMatrix {
        let sepia: [SIMD4<Float>] = [SIMD4(0.393, 0.769, 0.189, 0), SIMD4(0.349, 0.686, 0.168, 0), SIMD4(0.272, 0.534, 0.131, 0)]
        let identity: [SIMD4<Float>] = [SIMD4(1, 0, 0, 0), SIMD4(0, 1, 0, 0), SIMD4(0, 0, 1, 0)]
        return ColourMatrix(rows: (0..<3).map { identity[$0] + (sepia[$0] - identity[$0]) * amount })
    }

    /// Saturation: 0 grey, 1 unchanged, above 1 more vivid.
    public static func saturation(_ s: Float) -> ColourMatrix {
        let luma = SIMD4<Float>(0.299, 0.587, 0.114, 0) * (1 - s)
        return ColourMatrix(rows: [luma + SIMD4(s, 0, 0, 0), luma + SIMD4(0, s, 0, 0), luma + SIMD4(0, 0, s, 0)])
    }

    public func render(_ frame: Frame, engine: EngineCtx) {
        let (r, g, b) = (fixed[0], fixed[1], fixed[2])
        let lo = SIMD4<Int32>.zero, hi = SIMD4<Int32>(repeating: 255)
        let pixels = frame.pixels
        for i in 0..<frame.pixelCount {
            var c = channels(pixels[i])
            let alpha = c[3]
            c[3] = 256   // the offset column
            let out = SIMD4<Int32>((r &* c).wrappedSum(), (g &* c).wrappedSum(), (b &* c).wrappedSum(), alpha << 8) &>> 8
            pixels[i] = pixel(out.clamped(lowerBound: lo, upperBound: hi))
        }
    }
}

/// Draws the frame's timecode (HH:MM:SS:FF of its media frame number) in a
/// dark box at the top left, in a 5×7 pixel font scaled by `scale`.
///
/// Threading: its node's thread.
public final class TimecodeOverlay: FrameWork {
    public let scale: Int

    public init(scale: Int = 3) {
        precondition(scale >= 1, "scale is at least 1")
        self.scale = scale
    }

    public func render(_ frame: Frame, engine: EngineCtx) {
        let text = Array(frame.job.timecode.utf8)
        let (w, h) = (frame.width, frame.height)
        let margin = 2 * scale
        let boxWidth = min(w, text.count * 6 * scale + 2 * margin - scale)
        let boxHeight = min(h, 7 * scale + 2 * margin)
        let pixels = frame.pixels
        for y in 0..<boxHeight {
            for x in 0..<boxWidth {   // darken to a quarter, keep alpha
                let p = pixels[y * w + x]
                pixels[y * w + x] = (p >> 2) & 0x003F_3F3F | (p & 0xFF00_0000)
            }
        }
        for (index, character) in text.enumerated() {
            guard let glyph = Self.font[character] else { continue }
            for row in 0..<7 {
                for column in 0..<5 where glyph[row] & (0x10 >> column) != 0 {
                    let x0 = margin + (index * 6 + column) * scale, y0 = margin + row * scale
                    guard x0 < w && y0 < h else { continue }   // clipped by a small frame
                    for y in y0..<min(h, y0 + scale) {
                        for x in x0..<min(w, x0 + scale) { pixels[y * w + x] = 0xFFFF_FFFF }
                    }
                }
            }
        }
    }

    /// Rows of 5 bits (most significant bit leftmost) for the characters a timecode uses.
    private static let font: [UInt8: [UInt8]] = [
        UInt8(ascii: "0"): [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
        UInt8(ascii: "1"): [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        UInt8(ascii: "2"): [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
        UInt8(ascii: "3"): [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        UInt8(ascii: "4"): [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        UInt8(ascii: "5"): [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        UInt8(ascii: "6"): [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
        UInt8(ascii: "7"): [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        UInt8(ascii: "8"): [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
        UInt8(ascii: "9"): [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        UInt8(ascii: ":"): [0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00],
        UInt8(ascii: "-"): [0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00],
    ]
}

/// "Source over" of `top` onto `base` (both `count` pixels), with `top`'s
/// alpha scaled by `opacity`; the result is opaque where `base` was.
func composite(_ top: UnsafePointer<UInt32>, over base: UnsafeMutablePointer<UInt32>, count: Int, opacity: Double) {
    let gain = Int32(opacity * 256)
    for i in 0..<count {
        let t = channels(top[i]), b = channels(base[i])
        let a = (t[3] * gain) >> 8   // 0…255
        var out = (t &* a &+ b &* (255 - a) &+ 127) / 255
        out[3] = b[3] + ((255 - b[3]) * a + 127) / 255
        base[i] = pixel(out)
    }
}

/// "Source over" with straight (not premultiplied) alpha on both sides: a
/// transparent base takes the top as it is, so painting objects into a
/// transparent partial image and then that image over a background gives
/// what painting them on the background directly gives (up to rounding).
@inline(__always)
func blendOver(_ top: UInt32, _ base: UInt32) -> UInt32 {
    let ta = top >> 24
    if ta == 255 || base >> 24 == 0 { return top }
    if ta == 0 { return base }
    let t = SIMD4<Float>(channels(top)), b = SIMD4<Float>(channels(base))
    let (a, ba) = (t[3] / 255, b[3] / 255)
    let out = a + ba * (1 - a)
    var rgb = (t * a + b * (ba * (1 - a))) / out
    rgb[3] = out * 255
    return pixel(SIMD4<Int32>((rgb + 0.5).rounded(.down)))
}

/// Scales frames to `width × height` by bilinear interpolation into a new
/// buffer from the queue's creator (set `buffers: upstream` to use the
/// render process's frame creator); the input buffer is released.
///
/// Threading: as `BufferProcessor`.
public final class BilinearScaler: BufferProcessor, FailureReporting {
    public let width: Int
    public let height: Int
    public private(set) var failureReason: String?

    public init(width: Int, height: Int) {
        precondition(width > 0 && height > 0, "a frame needs a size")
        self.width = width
        self.height = height
    }

    struct NoBuffer: Error, CustomStringConvertible {
        var description: String { "no output buffer (its pool is empty)" }
    }

    public func process(_ buffer: Buffer, context: ProcessContext) -> ProcessResult {
        frameJob(buffer, context: context, failure: &failureReason) { input in
            guard let out = context.acquireBuffer(size: Frame.byteCount(width: width, height: height)) else { throw NoBuffer() }
            let output = Frame.make(in: out, width: width, height: height, job: input.job)
            scale(input, into: output)
            context.doneBuffer(buffer)
            return out
        }
    }

    func scale(_ input: Frame, into output: Frame) {
        let (sw, sh) = (input.width, input.height)
        // 16.16 fixed point, pixel centres aligned.
        let stepX = (sw << 16) / width, stepY = (sh << 16) / height
        let source = input.pixels, target = output.pixels
        for y in 0..<height {
            let fy = max(0, min((y * stepY + stepY / 2) - (1 << 15), (sh - 1) << 16))
            let (y0, wy) = (fy >> 16, Int32((fy >> 8) & 0xFF))
            let y1 = min(y0 + 1, sh - 1)
            for x in 0..<width {
                let fx = max(0, min((x * stepX + stepX / 2) - (1 << 15), (sw - 1) << 16))
                let (x0, wx) = (fx >> 16, Int32((fx >> 8) & 0xFF))
                let x1 = min(x0 + 1, sw - 1)
                let top = channels(source[y0 * sw + x0]) &* (256 - wx) &+ channels(source[y0 * sw + x1]) &* wx
                let bottom = channels(source[y1 * sw + x0]) &* (256 - wx) &+ channels(source[y1 * sw + x1]) &* wx
                target[y * width + x] = pixel((top &* (256 - wy) &+ bottom &* wy &+ 32768) &>> 16)
            }
        }
    }
}
