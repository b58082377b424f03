/// One server's part of a frame: a tile in pixels (the pixel modes), or in
/// `db` a range `x0..<x1` of the data as fractions of 0…1 (`y0 = 0`, `y1 = 1`).
///
/// Threading: a value; any thread.
public struct SplitPart: Sendable, Equatable, CustomStringConvertible {
    public var x0: Double, y0: Double, x1: Double, y1: Double

    public init(x0: Double, y0: Double, x1: Double, y1: Double) {
        (self.x0, self.y0, self.x1, self.y1) = (x0, y0, x1, y1)
    }

    public var width: Double { x1 - x0 }
    public var height: Double { y1 - y0 }
    public var area: Double { width * height }
    public var isEmpty: Bool { !(width > 0 && height > 0) }

    /// The whole pixels a tile covers (pixel modes give whole-pixel edges).
    public var pixelColumns: Range<Int> { Int(x0.rounded())..<Int(x1.rounded()) }
    public var pixelRows: Range<Int> { Int(y0.rounded())..<Int(y1.rounded()) }
    /// Which of `count` items (objects, layers) a `db` range covers.
    public func items(of count: Int) -> Range<Int> {
        Int((x0 * Double(count)).rounded())..<Int((x1 * Double(count)).rounded())
    }

    public var description: String { "[\(x0), \(x1)) × [\(y0), \(y1))" }
}

/// The compound queue's load balancer (seed 004), a pure, deterministic
/// state machine: it holds the split tree, hands out each server's part of
/// the next frame, and moves the splits from the time each server took on
/// its part of the last finished frame, so that all servers finish together.
///
/// The timings make a load grid: each part of the last frame is a cell of
/// uniform cost per unit of area. The kd tree of servers is fixed (a node
/// of n servers gives ⌊n/2⌋ to its left child); each node shares out the
/// estimated time of its area in proportion to the weights of its
/// children, and places its split where the accumulated load reaches the
/// left child's share, interpolating inside a cell. Then damping, resistance
/// and the boundary apply, in that order.
///
/// Threading: a value; the compound queue's thread owns it.
public struct LoadBalancer: Sendable {
    public let config: LoadBalancerConfig
    public let servers: Int
    /// Each server's weight (from the config, or 1 each).
    public let weights: [Double]
    /// The frame the splits are laid over: pixels, or 1 × 1 for `db`.
    public private(set) var extent: (width: Double, height: Double) = (0, 0)
    /// One split per inner node of the tree, in preorder.
    public private(set) var splits: [Split] = []
    /// Each server's part under `splits`, in server order.
    private var layout: [SplitPart] = []
    /// Rebalances so far (frames whose timings moved or kept the splits).
    public private(set) var updates = 0

    /// A node's split: a line across `axis` at `position`, in the extent's units.
    public struct Split: Sendable, Equatable {
        public enum Axis: Sendable { case x, y }
        public var axis: Axis
        public var position: Double
    }

    public init(servers: Int, config: LoadBalancerConfig = LoadBalancerConfig()) {
        precondition(servers >= 1, "a compound has at least one server")
        precondition(config.problems(servers: servers).isEmpty, "invalid load balancer: \(config.problems(servers: servers))")
        self.servers = servers
        self.config = config
        weights = config.weights ?? Array(repeating: 1, count: servers)
    }

    /// Each server's part of a frame of `width` × `height` pixels (ignored
    /// in `db`). A new size lays the splits out afresh, in proportion to the
    /// weights.
    public mutating func parts(width: Int, height: Int) -> [SplitPart] {
        let wanted = config.mode.splitsPixels ? (Double(width), Double(height)) : (1.0, 1.0)
        if wanted != extent || splits.isEmpty {
            extent = wanted
            (splits, layout) = laid { _, rect, axis, share in rect.lower(axis) + share * rect.length(axis) }
        }
        return layout
    }

    /// Moves the splits from the last finished frame: `parts` as handed out
    /// for it and each server's time on its part (any unit). Without
    /// complete timings (a nil, a count that does not match, nothing
    /// measured) the splits stay.
    public mutating func update(parts: [SplitPart], times: [Double?]) {
        guard !splits.isEmpty, parts.count == servers, times.count == servers else { return }
        var cells: [(part: SplitPart, density: Double)] = []
        for (part, time) in zip(parts, times) {
            guard let time, time >= 0, time.isFinite else { return }
            if !part.isEmpty { cells.append((part, time / part.area)) }
        }
        guard cells.contains(where: { $0.density > 0 }) else { return }
        updates += 1
        let (previous, damping, resistance) = (splits, config.damping, config.resistance)
        (splits, layout) = laid { node, rect, axis, share in
            let old = previous[node]
            let ideal = Self.position(in: rect, across: axis, share: share, cells: cells)
            guard old.axis == axis else { return ideal }
            let damped = old.position + (1 - damping) * (ideal - old.position)
            return abs(damped - old.position) < resistance ? old.position : damped
        }
    }

    /// Walks the tree from the root over the extent and gives each node's
    /// split, in preorder, and each server's part: `place` proposes a
    /// position from the node's index, area, axis and the left child's
    /// share of the weight; the boundary then applies.
    private func laid(_ place: (Int, SplitPart, Split.Axis, Double) -> Double) -> ([Split], [SplitPart]) {
        var (splits, parts): ([Split], [SplitPart]) = ([], [])
        var weightFrom = 0
        func descend(_ count: Int, _ rect: SplitPart) {
            guard count > 1 else {
                parts.append(rect)
                weightFrom += 1
                return
            }
            let axis: Split.Axis = switch config.mode {
            case .vertical, .db: .x
            case .horizontal: .y
            case .twoD: rect.width >= rect.height ? .x : .y
            }
            let leftWeight = weights[weightFrom..<weightFrom + count / 2].reduce(0, +)
            let rightWeight = weights[weightFrom + count / 2..<weightFrom + count].reduce(0, +)
            let share = leftWeight + rightWeight > 0 ? leftWeight / (leftWeight + rightWeight) : 0.5
            let position = aligned(place(splits.count, rect, axis, share), in: rect, across: axis,
                                   leftEmpty: leftWeight == 0, rightEmpty: rightWeight == 0)
            splits.append(Split(axis: axis, position: position))
            let (left, right) = rect.cut(axis, at: position)
            descend(count / 2, left)
            descend(count - count / 2, right)
        }
        descend(servers, SplitPart(x0: 0, y0: 0, x1: extent.width, y1: extent.height))
        return (splits, parts)
    }

    /// Snaps `position` to the boundary and keeps both sides at least one
    /// boundary wide, except a side whose servers all have weight 0, which
    /// gets nothing.
    private func aligned(_ position: Double, in rect: SplitPart, across axis: Split.Axis,
                         leftEmpty: Bool, rightEmpty: Bool) -> Double {
        let (lo, hi) = (rect.lower(axis), rect.upper(axis))
        if leftEmpty { return lo }
        if rightEmpty { return hi }
        let b = axis == .x ? config.boundary.x : config.boundary.y
        guard b > 0 else { return min(max(position, lo), hi) }
        let lowest = ((lo + b) / b).rounded(.up) * b, highest = ((hi - b) / b).rounded(.down) * b
        let snapped = (position / b).rounded() * b
        if lowest <= highest { return min(max(snapped, lowest), highest) }
        return min(max(((lo + hi) / 2 / b).rounded() * b, lo), hi)   // too small for two whole boundaries
    }

    /// Where, across `axis` inside `rect`, the load of the cells to the
    /// lower side reaches `share` of the load inside `rect`. The load is
    /// linear between cell edges, so the answer is interpolated on the
    /// segment that crosses the target. A node without measured load splits
    /// its area by `share`.
    static func position(in rect: SplitPart, across axis: Split.Axis, share: Double,
                         cells: [(part: SplitPart, density: Double)]) -> Double {
        let (lo, hi) = (rect.lower(axis), rect.upper(axis))
        func load(below p: Double) -> Double {
            cells.reduce(0) { sum, cell in
                let inside = cell.part.intersection(rect)
                guard !inside.isEmpty else { return sum }
                let along = min(max(p - inside.lower(axis), 0), inside.length(axis))
                return sum + cell.density * along * inside.length(axis.other)
            }
        }
        let total = load(below: hi)
        guard total > 0 else { return lo + share * (hi - lo) }
        let target = share * total
        let edges = Set(cells.flatMap { [$0.part.lower(axis), $0.part.upper(axis)] }.filter { $0 > lo && $0 < hi })
        var previous = (position: lo, load: 0.0)
        for edge in edges.sorted() + [hi] {
            let here = load(below: edge)
            if here >= target {
                let slope = here - previous.load
                return slope > 0 ? previous.position + (target - previous.load) / slope * (edge - previous.position) : previous.position
            }
            previous = (edge, here)
        }
        return hi
    }
}

extension LoadBalancer.Split.Axis {
    var other: Self { self == .x ? .y : .x }
}

extension SplitPart {
    func lower(_ axis: LoadBalancer.Split.Axis) -> Double { axis == .x ? x0 : y0 }
    func upper(_ axis: LoadBalancer.Split.Axis) -> Double { axis == .x ? x1 : y1 }
    func length(_ axis: LoadBalancer.Split.Axis) -> Double { upper(axis) - lower(axis) }

    /// The two sides of a line across `axis` at `position`.
    func cut(_ axis: LoadBalancer.Split.Axis, at position: Double) -> (SplitPart, SplitPart) {
        var (left, right) = (self, self)
        if axis == .x { (left.x1, right.x0) = (position, position) } else { (left.y1, right.y0) = (position, position) }
        return (left, right)
    }

    func intersection(_ other: SplitPart) -> SplitPart {
        SplitPart(x0: max(x0, other.x0), y0: max(y0, other.y0), x1: min(x1, other.x1), y1: min(y1, other.y1))
    }
}
