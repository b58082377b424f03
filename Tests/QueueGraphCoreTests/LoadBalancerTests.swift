import Testing
@testable import QueueGraphCore

/// The load balancer's split arithmetic, without threads (seed 004).
@Suite("Load balancer")
struct LoadBalancerTests {
    /// A balancer whose first frame of `width` × `height` was laid out.
    func balancer(_ servers: Int, _ mode: SplitMode, damping: Double = 0, boundary: LoadBalancerConfig.Boundary? = nil,
                  resistance: Double = 0, weights: [Double]? = nil, width: Int = 1200, height: Int = 600)
        -> (LoadBalancer, [SplitPart]) {
        var lb = LoadBalancer(servers: servers, config: LoadBalancerConfig(
            mode: mode, damping: damping, boundary: boundary, resistance: resistance, weights: weights))
        let parts = lb.parts(width: width, height: height)
        return (lb, parts)
    }

    /// The time the last frame's cells say `part` costs.
    func estimate(_ part: SplitPart, cells: [SplitPart], times: [Double]) -> Double {
        zip(cells, times).reduce(0) { sum, cell in
            let inside = cell.0.intersection(part)
            return inside.isEmpty ? sum : sum + cell.1 * inside.area / cell.0.area
        }
    }

    @Test("db then vertical, 30 ms on [0, 0.5) and 10 ms on [0.5, 1): damping 0 gives 1/3, damping 0.5 gives 0.4167")
    func twoServers() {
        for (damping, expected) in [(0.0, 1.0 / 3), (0.5, 0.41666666666666667)] {
            var (lb, parts) = balancer(2, .db, damping: damping)
            #expect(parts.map(\.x0) == [0, 0.5])
            lb.update(parts: parts, times: [30, 10])
            #expect(abs(lb.splits[0].position - expected) < 1e-12)
            #expect(lb.parts(width: 1, height: 1)[1].x0 == lb.splits[0].position)
        }
        // The same in pixels, vertical: a 1200-pixel frame.
        var (lb, parts) = balancer(2, .vertical)
        #expect(parts[0].pixelColumns == 0..<600 && parts[1].pixelColumns == 600..<1200)
        lb.update(parts: parts, times: [30, 10])
        let next = lb.parts(width: 1200, height: 600)
        #expect(next[0].pixelColumns == 0..<400 && next[1].pixelColumns == 400..<1200)
        #expect(next.allSatisfy { $0.pixelRows == 0..<600 })
        var (damped, first) = balancer(2, .vertical, damping: 0.5)
        damped.update(parts: first, times: [30, 10])
        #expect(damped.parts(width: 1200, height: 600)[0].pixelColumns == 0..<500)   // 0.4167 × 1200
    }

    @Test("weights 1:3 give the left server a quarter of the time")
    func weights() {
        var (lb, parts) = balancer(2, .vertical, weights: [1, 3])
        #expect(parts[0].pixelColumns == 0..<300)   // no timings yet: a quarter of the area
        lb.update(parts: parts, times: [30, 10])   // 0.1 ms per column on the left, 1/90 ms on the right
        let next = lb.parts(width: 1200, height: 600)
        let times = next.map { estimate($0, cells: parts, times: [30, 10]) }
        #expect(abs(times[0] / (times[0] + times[1]) - 0.25) < 1e-9)
    }

    @Test("a balanced three-way split stays where it is")
    func balancedStays() {
        var (lb, parts) = balancer(3, .vertical)
        #expect(parts.map(\.pixelColumns) == [0..<400, 400..<800, 800..<1200])
        for _ in 0..<5 { lb.update(parts: lb.parts(width: 1200, height: 600), times: [12, 12, 12]) }
        #expect(lb.parts(width: 1200, height: 600) == parts)
        #expect(lb.updates == 5)
    }

    @Test("boundary [8, 8] snaps every split to a multiple of 8 px")
    func boundary() {
        var (lb, parts) = balancer(5, .twoD, damping: 0.3, boundary: .init(x: 8, y: 8), width: 1920, height: 1080)
        let times: [Double] = [3, 17, 5.5, 1, 9]
        for _ in 0..<4 {
            lb.update(parts: parts, times: times)
            parts = lb.parts(width: 1920, height: 1080)
            #expect(lb.splits.allSatisfy { $0.position.truncatingRemainder(dividingBy: 8) == 0 })
            #expect(parts.allSatisfy { $0.width >= 8 && $0.height >= 8 })
        }
        #expect(parts.reduce(0) { $0 + $1.area } == 1920 * 1080)
    }

    @Test("a resistance larger than the move keeps the old split; a smaller one lets it move")
    func resistance() {
        for (resistance, expected) in [(250.0, 600.0), (150, 400)] {   // the move is 200 px
            var (lb, parts) = balancer(2, .vertical, resistance: resistance)
            lb.update(parts: parts, times: [30, 10])
            #expect(lb.splits[0].position == expected)
        }
    }

    @Test("a server with weight 0 gets an empty tile, before and after timings")
    func zeroWeight() {
        var (lb, parts) = balancer(3, .vertical, boundary: .init(x: 16, y: 16), weights: [1, 0, 1])
        #expect(parts[1].isEmpty && !parts[0].isEmpty && !parts[2].isEmpty)
        lb.update(parts: parts, times: [20, 0, 5])
        parts = lb.parts(width: 1200, height: 600)
        #expect(parts[1].isEmpty && parts[0].width >= 16 && parts[2].width >= 16)
        #expect(parts[0].width + parts[2].width == 1200)
    }

    @Test("2D: a 1920×1080 frame splits into columns first, a 1080×1920 frame into rows")
    func twoDimensional() {
        let (_, wide) = balancer(2, .twoD, width: 1920, height: 1080)
        #expect(wide.map(\.pixelColumns) == [0..<960, 960..<1920] && wide.allSatisfy { $0.pixelRows == 0..<1080 })
        let (_, tall) = balancer(2, .twoD, width: 1080, height: 1920)
        #expect(tall.map(\.pixelRows) == [0..<960, 960..<1920] && tall.allSatisfy { $0.pixelColumns == 0..<1080 })
        // Four servers: the columns of 960×1080 split again across their longer axis, into rows.
        let (lb, four) = balancer(4, .twoD, width: 1920, height: 1080)
        #expect(lb.splits.map(\.axis) == [.x, .y, .y])
        #expect(four.map(\.area) == Array(repeating: 960 * 540, count: 4))
    }

    @Test("2D with damping 0: every tile's estimated time is the same after one frame")
    func equalTimes() {
        var (lb, parts) = balancer(4, .twoD, width: 1920, height: 1080)
        let times: [Double] = [40, 8, 16, 4]
        lb.update(parts: parts, times: times)
        let next = lb.parts(width: 1920, height: 1080).map { estimate($0, cells: parts, times: times) }
        // Splits fall on whole pixels: one column or row of the densest cell is the tolerance.
        for t in next { #expect(abs(t - 17) < 40.0 / 540) }
    }

    @Test("without complete timings the split stays; a new frame size lays it out afresh")
    func incomplete() {
        var (lb, parts) = balancer(2, .vertical)
        lb.update(parts: parts, times: [30, nil])
        lb.update(parts: parts, times: [30])
        lb.update(parts: parts, times: [0, 0])
        #expect(lb.updates == 0 && lb.parts(width: 1200, height: 600) == parts)
        lb.update(parts: parts, times: [30, 10])
        #expect(lb.parts(width: 600, height: 600).map(\.pixelColumns) == [0..<300, 300..<600])
    }

    @Test("bad parameters are named")
    func problems() {
        let config = LoadBalancerConfig(mode: .twoD, damping: 1.5, boundary: .init(x: 0, y: 2.5), resistance: -1, weights: [1, -1])
        let found = config.problems(servers: 3)
        #expect(found.count == 6, "\(found)")
        #expect(LoadBalancerConfig(mode: .db, boundary: .init(x: 1, y: 0)).problems(servers: 2).count == 1)
        #expect(LoadBalancerConfig(weights: [0, 0]).problems(servers: 2) == ["found only weights of 0, expected at least one server with weight > 0"])
    }
}
