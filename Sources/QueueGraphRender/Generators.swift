#if canImport(Glibc)
import Glibc
#endif

/// Paints a Julia set zoom that moves with media time: c travels round a
/// circle and the view breathes in and out. The cost per pixel is uneven
/// (escape-time iteration, up to `maxIterations`): points near the set cost
/// far more than the rest, which is what a load balancer must cope with.
/// Eight pixels are iterated at once (SIMD).
///
/// Threading: its node's thread.
public final class JuliaZoom: FrameWork {
    public let maxIterations: Int
    private let palette: [UInt32]

    public init(maxIterations: Int = 64) {
        precondition(maxIterations >= 1, "at least one iteration")
        self.maxIterations = maxIterations
        palette = (0...maxIterations).map { i in
            if i == maxIterations { return rgba(0, 0, 0) }
            let t = Double(i) / Double(maxIterations)
            return rgba(9 * (1 - t) * t * t * t * 255, 15 * (1 - t) * (1 - t) * t * t * 255, 8.5 * (1 - t) * (1 - t) * (1 - t) * t * 255)
        }
    }

    public func render(_ frame: Frame, engine: EngineCtx) {
        let t = Double(frame.job.mediaTime) / 1e9
        let angle = t * 0.35
        let (cr, ci) = (Float(0.7885 * cos(angle)), Float(0.7885 * sin(angle)))
        let (w, h) = (frame.width, frame.height)
        let scale = Float(3.2 * (0.6 + 0.4 * cos(t * 0.3))) / Float(w)
        let lanes = SIMD8<Float>(0, 1, 2, 3, 4, 5, 6, 7) * scale
        let (cr8, ci8) = (SIMD8<Float>(repeating: cr), SIMD8<Float>(repeating: ci))
        let four = SIMD8<Float>(repeating: 4)
        let pixels = frame.pixels
        palette.withUnsafeBufferPointer { palette in
            for y in 0..<h {
                let zi0 = Float(y - h / 2) * scale
                let row = pixels + y * w
                var x = 0
                while x < w {
                    var zr = lanes + Float(x - w / 2) * scale
                    var zi = SIMD8<Float>(repeating: zi0)
                    var count = SIMD8<Int32>(repeating: 0)
                    for _ in 0..<maxIterations {
                        let (zr2, zi2) = (zr * zr, zi * zi)
                        let alive = zr2 + zi2 .< four
                        if !any(alive) { break }
                        count &-= unsafeBitCast(alive, to: SIMD8<Int32>.self)   // true is -1
                        zi = 2 * zr * zi + ci8
                        zr = zr2 - zi2 + cr8
                    }
                    for lane in 0..<min(8, w - x) { row[x + lane] = palette[Int(count[lane])] }
                    x += 8
                }
            }
        }
    }
}

/// Paints an animated plasma with a soft alpha (a layer to composite over
/// another): the sum of three sine waves (along x, along y and along the
/// diagonal) from per-frame tables, so each pixel costs three lookups.
///
/// Threading: its node's thread.
public final class Plasma: FrameWork {
    private let palette: [UInt32] = (0..<256).map { i in
        let a = Double(i) / 256 * 2 * .pi
        let alpha = 0.35 + 0.35 * sin(a * 2)
        return rgba(128 + 127 * sin(a), 128 + 127 * sin(a + 2.1), 128 + 127 * sin(a + 4.2), alpha * 255)
    }
    private var columns: [Int32] = []
    private var rows: [Int32] = []
    private var diagonal: [Int32] = []

    public init() {}

    public func render(_ frame: Frame, engine: EngineCtx) {
        let t = Double(frame.job.mediaTime) / 1e9
        let (w, h) = (frame.width, frame.height)
        // The tables are rewritten in place: no allocation per frame once the size is set.
        func wave(_ table: inout [Int32], _ n: Int, frequency: Double, phase: Double) {
            if table.count != n { table = Array(repeating: 0, count: n) }
            for i in 0..<n { table[i] = Int32(42 * sin(Double(i) * frequency / Double(w) + phase)) }
        }
        wave(&columns, w, frequency: 14, phase: t * 1.3)
        wave(&rows, h, frequency: 11, phase: -t * 0.9)
        wave(&diagonal, w + h, frequency: 9, phase: t * 0.7)
        let pixels = frame.pixels
        palette.withUnsafeBufferPointer { palette in
            for y in 0..<h {
                let row = pixels + y * w
                let ry = rows[y] + 128
                for x in 0..<w {
                    row[x] = palette[Int(UInt8(truncatingIfNeeded: columns[x] + ry + diagonal[x + y]))]
                }
            }
        }
    }
}

/// A white ball bouncing on black, like GStreamer's `videotestsrc
/// pattern=ball`: the cheap generator for like-for-like comparisons.
///
/// Threading: its node's thread.
public final class BouncingBall: FrameWork {
    public init() {}

    public func render(_ frame: Frame, engine: EngineCtx) {
        let (w, h) = (frame.width, frame.height)
        let t = Double(frame.job.mediaTime) / 1e9
        let radius = Double(min(w, h)) / 10
        // A triangle wave across the free width and height: the ball bounces off the edges.
        func bounce(_ span: Double, _ speed: Double) -> Double {
            let p = (t * speed).truncatingRemainder(dividingBy: 2)
            return radius + span * (p < 1 ? p : 2 - p)
        }
        let (cx, cy) = (bounce(Double(w) - 2 * radius, 0.37), bounce(Double(h) - 2 * radius, 0.53))
        frame.pixelBuffer.update(repeating: rgba(0, 0, 0))
        let pixels = frame.pixels
        for y in max(0, Int(cy - radius) - 1)..<min(h, Int(cy + radius) + 2) {
            let dy = Double(y) + 0.5 - cy
            for x in max(0, Int(cx - radius) - 1)..<min(w, Int(cx + radius) + 2) {
                let dx = Double(x) + 0.5 - cx
                let coverage = min(max(radius - (dx * dx + dy * dy).squareRoot() + 0.5, 0), 1)
                if coverage > 0 { pixels[y * w + x] = rgba(255 * coverage, 255 * coverage, 255 * coverage) }
            }
        }
    }
}

/// Packs 0…255 channel values (clamped) into an RGBA pixel.
@inline(__always)
func rgba(_ r: Double, _ g: Double, _ b: Double, _ a: Double = 255) -> UInt32 {
    func byte(_ v: Double) -> UInt32 { UInt32(min(max(v.rounded(), 0), 255)) }
    return byte(r) | byte(g) << 8 | byte(b) << 16 | byte(a) << 24
}
