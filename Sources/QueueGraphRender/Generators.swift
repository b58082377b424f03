#if canImport(Glibc)
import Glibc
#endif
import QueueGraphCore

/// Paints a Julia set zoom that moves with media time: c travels round a
/// circle and the view breathes in and out. The cost per pixel is uneven
/// (escape-time iteration, up to `maxIterations`): points near the set cost
/// far more than the rest, which is what a load balancer must cope with.
/// Eight pixels are iterated at once (SIMD). Splits by tiles (a compound
/// queue's pixel modes).
///
/// Threading: its node's thread; parts on any number of threads at once.
public final class JuliaZoom: PartWork {
    public let maxIterations: Int
    /// The point of the complex plane at the frame's centre (0, 0: the set is
    /// centred and each half of the frame costs the same).
    public let centre: (x: Float, y: Float)
    /// How much closer than the default view (1) it looks.
    public let zoom: Float
    /// Where on its circle c starts (radians; c passes near the Mandelbrot
    /// set's boundary, where the set is costliest, around 1.5 to 2.5).
    public let phase: Double
    private let palette: [UInt32]

    public init(maxIterations: Int = 64, centre: (x: Float, y: Float) = (0, 0), zoom: Float = 1, phase: Double = 0) {
        precondition(maxIterations >= 1 && zoom > 0, "at least one iteration, and a positive zoom")
        self.maxIterations = maxIterations
        self.centre = centre
        self.zoom = zoom
        self.phase = phase
        palette = (0...maxIterations).map { i in
            if i == maxIterations { return rgba(0, 0, 0) }
            let t = Double(i) / Double(maxIterations)
            return rgba(9 * (1 - t) * t * t * t * 255, 15 * (1 - t) * (1 - t) * t * t * 255, 8.5 * (1 - t) * (1 - t) * (1 - t) * t * 255)
        }
    }

    public static let splitModes = SplitMode.pixelModes

    public func render(_ frame: Frame, part: SplitPart, mode: SplitMode, into pixels: UnsafeMutablePointer<UInt32>) {
        let t = Double(frame.job.mediaTime) / 1e9
        let angle = t * 0.35 + phase
        let (cr, ci) = (Float(0.7885 * cos(angle)), Float(0.7885 * sin(angle)))
        let (w, h) = (frame.width, frame.height)
        let scale = Float(3.2 * (0.6 + 0.4 * cos(t * 0.3))) / Float(w) / zoom
        let lanes = SIMD8<Float>(0, 1, 2, 3, 4, 5, 6, 7) * scale
        let (cr8, ci8) = (SIMD8<Float>(repeating: cr), SIMD8<Float>(repeating: ci))
        let four = SIMD8<Float>(repeating: 4)
        let columns = part.pixelColumns
        palette.withUnsafeBufferPointer { palette in
            for y in part.pixelRows {
                let zi0 = Float(y - h / 2) * scale + centre.y
                let row = pixels + y * w
                var x = columns.lowerBound
                while x < columns.upperBound {
                    var zr = lanes + (Float(x - w / 2) * scale + centre.x)
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
                    for lane in 0..<min(8, columns.upperBound - x) { row[x + lane] = palette[Int(count[lane])] }
                    x += 8
                }
            }
        }
    }
}

/// A synthetic load for load balancing: each pixel costs a little work, and
/// the pixels within `radius` of a hot spot cost `heat` times more. The hot
/// spot sits near the left edge for the first `holdFrames` frames, then
/// travels right and back (one sweep every `sweepFrames` frames). It paints
/// each pixel's cost, so its output shows where the work was.
///
/// Threading: its node's thread; parts on any number of threads at once.
public final class HotSpot: PartWork {
    public let heat: Int
    public let radius: Double
    public let holdFrames: Int64
    public let sweepFrames: Int64

    public init(heat: Int = 24, radius: Double = 0.2, holdFrames: Int64 = 20, sweepFrames: Int64 = 120) {
        (self.heat, self.radius, self.holdFrames, self.sweepFrames) = (heat, radius, holdFrames, sweepFrames)
    }

    public static let splitModes = SplitMode.pixelModes

    /// The hot spot's centre at `tick`, as fractions of the width and height.
    public func centre(at tick: Int64) -> (x: Double, y: Double) {
        guard tick >= holdFrames else { return (0.15, 0.5) }
        let phase = Double((tick - holdFrames) % sweepFrames) / Double(sweepFrames)   // 0…1: right and back
        return (0.15 + 0.7 * (phase < 0.5 ? 2 * phase : 2 - 2 * phase), 0.5)
    }

    public func render(_ frame: Frame, part: SplitPart, mode: SplitMode, into pixels: UnsafeMutablePointer<UInt32>) {
        let (w, h) = (frame.width, frame.height)
        let (cx, cy) = centre(at: frame.job.tick)
        let r2 = radius * radius * Double(w * w)
        for y in part.pixelRows {
            let dy = Double(y) - cy * Double(h)
            for x in part.pixelColumns {
                let dx = Double(x) - cx * Double(w)
                let rounds = dx * dx + dy * dy < r2 ? heat : 1
                // A non-linear hash chain the optimiser cannot fold into a closed form: the pixel's cost.
                var v = UInt32(truncatingIfNeeded: x &* 73_856_093 ^ y &* 19_349_663)
                for _ in 0..<rounds * 8 { v = (v &* 1_664_525 &+ 1_013_904_223) ^ (v >> 13) }
                let shade = Double(rounds) / Double(heat) * 200
                pixels[y * w + x] = rgba(shade, 40 + Double(v >> 28), 255 - shade)
            }
        }
    }
}

/// Paints `count` soft discs drifting over a dark background, painted in
/// order (each over the ones before): the scene of objects that a `db`
/// split shares out by range. Item 0 is the background and items 1…count
/// the discs, whose sizes (and so costs) differ by a factor of ten. Splits
/// by tiles too.
///
/// Threading: its node's thread; parts on any number of threads at once.
public final class Discs: PartWork {
    public let count: Int

    public init(count: Int = 48) {
        precondition(count >= 1, "at least one disc")
        self.count = count
    }

    public static let splitModes = Set(SplitMode.allCases)

    public func render(_ frame: Frame, part: SplitPart, mode: SplitMode, into pixels: UnsafeMutablePointer<UInt32>) {
        let (w, h) = (frame.width, frame.height)
        let t = Double(frame.job.mediaTime) / 1e9
        let (items, columns, rows) = mode == .db
            ? (part.items(of: count + 1), 0..<w, 0..<h)
            : (0..<count + 1, part.pixelColumns, part.pixelRows)
        for item in items {
            guard item > 0 else {
                for y in rows {
                    let background = rgba(10, 12, 20 + Double(40 * y / h))
                    (pixels + y * w + columns.lowerBound).update(repeating: background, count: columns.count)
                }
                continue
            }
            // A disc's path and colour from its index: golden-ratio spacing.
            let seed = Double(item) * 0.618_033_988_7
            let radius = Double(min(w, h)) * (0.03 + 0.09 * (seed * 7).truncatingRemainder(dividingBy: 1))
            let cx = Double(w) * (0.5 + 0.4 * sin(t * (0.3 + seed.truncatingRemainder(dividingBy: 0.4)) + seed * 9))
            let cy = Double(h) * (0.5 + 0.4 * cos(t * (0.25 + (seed * 3).truncatingRemainder(dividingBy: 0.3)) + seed * 5))
            let colour = rgba(128 + 127 * sin(seed * 11), 128 + 127 * sin(seed * 13 + 2), 128 + 127 * sin(seed * 17 + 4), 0)
            // The disc's bounding box clipped to the tile (empty when it lies outside).
            let (y0, y1) = (max(rows.lowerBound, Int(cy - radius)), min(rows.upperBound, Int(cy + radius) + 1))
            let (x0, x1) = (max(columns.lowerBound, Int(cx - radius)), min(columns.upperBound, Int(cx + radius) + 1))
            guard y0 < y1, x0 < x1 else { continue }
            for y in y0..<y1 {
                let dy = Double(y) + 0.5 - cy
                for x in x0..<x1 {
                    let dx = Double(x) + 0.5 - cx
                    let alpha = min(max(radius - (dx * dx + dy * dy).squareRoot(), 0), 1.5) / 1.5 * 0.8
                    guard alpha > 0 else { continue }
                    // alpha ≤ 0.8: its byte needs no clamping.
                    pixels[y * w + x] = blendOver(colour | UInt32((alpha * 255).rounded()) << 24, pixels[y * w + x])
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
