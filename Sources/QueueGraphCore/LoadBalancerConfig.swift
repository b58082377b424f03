/// How a compound queue splits each frame's work among its servers (seed
/// 004, Equalizer's load balancer modes).
public enum SplitMode: String, Sendable, CaseIterable {
    /// A kd tree of tiles: each node splits across its longer axis.
    case twoD = "2D"
    /// Columns: every split is a vertical line.
    case vertical
    /// Rows: every split is a horizontal line.
    case horizontal
    /// A range of the data (objects, layers): each server renders its range
    /// into a partial image, and the partial images are composited in order.
    case db

    /// Whether the split is of pixels (a tile per server) rather than of data.
    public var splitsPixels: Bool { self != .db }
    /// The modes that split pixels.
    public static let pixelModes = Set(allCases.filter(\.splitsPixels))
}

/// The parameters of a compound queue's load balancer.
///
/// Units: `boundary` and `resistance` are pixels in the pixel modes, and
/// fractions of the data range in `db`.
///
/// Threading: a value; any thread.
public struct LoadBalancerConfig: Sendable, Equatable {
    /// The alignment of splits, per axis.
    public struct Boundary: Sendable, Equatable {
        public var x: Double
        public var y: Double

        public init(x: Double, y: Double) {
            self.x = x
            self.y = y
        }
    }

    public var mode: SplitMode
    /// 0…1: how much of the previous split is kept. 0 jumps to the new
    /// estimate, 1 freezes the split where it is.
    public var damping: Double
    /// Splits fall on multiples of it, and no tile is smaller than it unless
    /// its server has weight 0. Whole pixels (at least 1) in the pixel modes;
    /// a fraction (0: no alignment) in `db` (`y` unused).
    public var boundary: Boundary
    /// A split moves only when the move is at least this large.
    public var resistance: Double
    /// Each server's share of the work, relative to the others; nil: equal.
    /// A server of weight 0 gets an empty tile.
    public var weights: [Double]?

    public init(mode: SplitMode = .twoD, damping: Double = 0.5, boundary: Boundary? = nil, resistance: Double = 0,
                weights: [Double]? = nil) {
        self.mode = mode
        self.damping = damping
        self.boundary = boundary ?? (mode.splitsPixels ? Boundary(x: 1, y: 1) : Boundary(x: 0, y: 0))
        self.resistance = resistance
        self.weights = weights
    }

    /// The largest pixel boundary, resistance and weight (the config, graph
    /// files and their schema check these same limits).
    public static let maxBoundary = 65536
    public static let maxResistance = 1_000_000.0
    public static let maxWeight = 1_000_000.0

    /// What is wrong with it for a queue of `servers` servers, one message per problem.
    public func problems(servers: Int) -> [String] {
        var found: [String] = []
        if !(0...1).contains(damping) { found.append("found damping \(damping), expected a number in 0…1") }
        if !(0...Self.maxResistance).contains(resistance) {
            found.append("found resistance \(resistance), expected a number in 0…\(Int(Self.maxResistance))")
        }
        if mode.splitsPixels {
            for (axis, b) in [("x", boundary.x), ("y", boundary.y)] where !(b >= 1 && b <= Double(Self.maxBoundary) && b == b.rounded()) {
                found.append("found boundary \(axis) \(b), expected whole pixels in 1…\(Self.maxBoundary)")
            }
        } else if !(0..<1).contains(boundary.x) {
            found.append("found boundary \(boundary.x), expected a fraction of the data range in 0…1 (excluding 1)")
        }
        if let weights {
            if weights.count != servers {
                found.append("found \(weights.count) weights, expected one per server (\(servers))")
            }
            if weights.contains(where: { !(0...Self.maxWeight).contains($0) }) {
                found.append("found a weight out of range, expected weights in 0…\(Int(Self.maxWeight))")
            } else if !weights.contains(where: { $0 > 0 }) {
                found.append("found only weights of 0, expected at least one server with weight > 0")
            }
        }
        return found
    }
}
