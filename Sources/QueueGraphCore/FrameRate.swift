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
