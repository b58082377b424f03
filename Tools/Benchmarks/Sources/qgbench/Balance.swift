// `qgbench balance`: a compound queue of 2 servers on a synthetic load whose
// cost sits mostly on one side (the `hotspot` generator: held at the left for
// 20 frames, then sweeping right and back), and on the Julia zoom off-centre.
// Each load runs twice in the same process: with the static even split
// (damping 1 freezes the first split) and with the balanced one (damping
// 0.25 unless `--damping` says otherwise); the hot spot also runs with the
// library's default damping, 0.5, for comparison. Frame time is the compound's wall time from handing out the
// parts to the last server's end; the ideal is the servers' total time / 2.
// Prints every frame, writes a CSV and (with matplotlib) a PNG plot of the
// split position and the servers' times, and ends with the JSON figures.
import Foundation
import QueueGraphCore
import QueueGraphFile
import QueueGraphRender
import QueueGraphRuntime

/// The frames of one run of a compound graph.
func compoundRun(processor: String, parameters: String, damping: Double, frames: Int) throws -> [CompoundFrame] {
    let yaml = """
        queues:
          - {name: render, processor: render, parameters: {width: 960, height: 540, fps: 15, frames: \(frames), latency: 4}, pool: {count: 6}, threading: thread}
          - name: work
            processor: \(processor)
            parameters: {\(parameters)}
            size: 2
            buffers: reuse
            threading: thread
            servers: 2
            loadbalancer: {mode: vertical, damping: \(damping), boundary: [8, 8]}
          - {name: sink, processor: framesink, size: 2}
        connections: [render -> work, work -> sink]
        """
    let file = try GraphFile(yaml: yaml, file: "balance-\(processor).yaml", registry: everyProcessor)
    let graph = try file.config.createQueueGraph()
    try graph.start()
    graph.waitUntilFinished()
    let node = graph.processor(ofQueue: "work") as! CompoundNode
    let stats = graph.stop()
    precondition(stats.ledgerProblems().isEmpty, "ledger: \(stats.ledgerProblems())")
    let late = stats.dropped(.late)
    if late > 0 { print("    (\(late) frames missed their deadline and are not in the figures)") }
    return node.statistics.recent
}

/// The tick of the first frame from which `overIdeal` stays ≤ `goal` for 3 recorded frames running; nil when it never does.
func tickOfConvergence(_ frames: [CompoundFrame], goal: Double) -> Int64? {
    frames.indices.first { i in i + 3 <= frames.count && frames[i..<i + 3].allSatisfy { $0.overIdeal <= goal } }.map { frames[$0].tick }
}

/// The recorded frames whose ticks fall in `ticks` (a frame dropped as late has no record, so ticks, not positions, select).
func frames(_ frames: [CompoundFrame], _ ticks: some RangeExpression<Int64>) -> [CompoundFrame] {
    frames.filter { ticks.contains($0.tick) }
}

/// The median of the frames' `overIdeal`; NaN (shown as nan in the JSON) when there are none.
func medianOverIdeal(_ frames: [CompoundFrame]) -> Double { frames.isEmpty ? .nan : median(frames.map(\.overIdeal)) }

func balanceBenchmark(damping: Double) throws {
    let (hold, sweep): (Int64, Int64) = (20, 120)
    print("balance benchmark: 2 servers, vertical split, 960×540 at 15 fps; \(ProcessInfo.processInfo.activeProcessorCount) cores")
    print("  hotspot: 87 % of the cost in a disc at the left for \(hold) frames, then it sweeps right and back in \(sweep) frames")
    let hotspot = "heat: 24, radius: 0.2, hold: \(hold), sweep: \(sweep)"
    let total = Int(hold + sweep)
    let staticHot = try compoundRun(processor: "hotspot", parameters: hotspot, damping: 1, frames: total)
    let balancedHot = try compoundRun(processor: "hotspot", parameters: hotspot, damping: damping, frames: total)
    let defaultHot = try compoundRun(processor: "hotspot", parameters: hotspot, damping: LoadBalancerConfig().damping, frames: total)
    let julia = "iterations: 400, centre-x: 0.5, phase: 2.2"
    print("  julia: the zoom of Graphs/balanced-fractal.yaml (off-centre, c near the Mandelbrot set's boundary), 60 frames")
    let staticJulia = try compoundRun(processor: "julia", parameters: julia, damping: 1, frames: 60)
    let balancedJulia = try compoundRun(processor: "julia", parameters: julia, damping: damping, frames: 60)

    print("  frame  static ms  /ideal   balanced ms  /ideal   split px   server ms (balanced)")
    var csv = "frame,static_ms,static_over_ideal,balanced_ms,balanced_over_ideal,split_px,server0_ms,server1_ms,hot_spot_px\n"
    let spot = HotSpot(heat: 24, radius: 0.2, holdFrames: hold, sweepFrames: sweep)
    let staticByTick = Dictionary(staticHot.map { ($0.tick, $0) }, uniquingKeysWith: { a, _ in a })
    for b in balancedHot {
        guard let s = staticByTick[b.tick] else { continue }   // dropped as late in the static run
        let split = b.parts[0].x1
        let (t0, t1) = (Double(b.serverNanoseconds[0]) / 1e6, Double(b.serverNanoseconds[1]) / 1e6)
        print(String(format: "  %5d  %9.2f  %6.3f   %11.2f  %6.3f   %8.0f   %6.2f  %6.2f", b.tick, Double(s.wallNanoseconds) / 1e6,
                     s.overIdeal, Double(b.wallNanoseconds) / 1e6, b.overIdeal, split, t0, t1))
        csv += "\(b.tick),\(Double(s.wallNanoseconds) / 1e6),\(s.overIdeal),\(Double(b.wallNanoseconds) / 1e6),\(b.overIdeal),"
            + "\(split),\(t0),\(t1),\(spot.centre(at: b.tick).x * 960)\n"
    }
    let converge = tickOfConvergence(balancedHot, goal: 1.10)
    let defaultConverge = tickOfConvergence(defaultHot, goal: 1.10)
    let moving = frames(balancedHot, hold...)
    let dfr = try dynamicResolutionRun()
    var figures: [String: Double] = [
        "static_over_ideal": medianOverIdeal(frames(staticHot, 5...)),
        "balanced_over_ideal": medianOverIdeal(frames(balancedHot, 5...)),
        "frames_to_converge": Double(converge ?? Int64(total)),
        "held_static_over_ideal": medianOverIdeal(frames(staticHot, 5..<hold)),
        "held_balanced_over_ideal": medianOverIdeal(frames(balancedHot, 5..<hold)),
        "moving_static_over_ideal": medianOverIdeal(frames(staticHot, hold...)),
        "moving_balanced_over_ideal": medianOverIdeal(moving),
        "default_damping_over_ideal": medianOverIdeal(frames(defaultHot, 5...)),
        "default_damping_frames_to_converge": Double(defaultConverge ?? Int64(total)),
        "julia_static_over_ideal": medianOverIdeal(frames(staticJulia, 5...)),
        "julia_balanced_over_ideal": medianOverIdeal(frames(balancedJulia, 5...)),
        // How closely the split follows the hot spot while it moves: the correlation of the two.
        "moving_split_correlation": correlation(moving.map(\.parts[0].x1), moving.map { spot.centre(at: $0.tick).x * 960 }),
    ]
    print(String(format: "  hotspot after 5 frames: frame time / ideal %.3f static, %.3f balanced (held %.3f / %.3f, moving %.3f / %.3f)",
                 figures["static_over_ideal"]!, figures["balanced_over_ideal"]!, figures["held_static_over_ideal"]!,
                 figures["held_balanced_over_ideal"]!, figures["moving_static_over_ideal"]!, figures["moving_balanced_over_ideal"]!))
    print("  balanced (damping \(damping)) within 1.10 of the ideal from frame \(converge.map(String.init) ?? "never") on (3 frames running)")
    print(String(format: "  with the default damping 0.5: %.3f after 5 frames, within 1.10 from frame %@ on", figures["default_damping_over_ideal"]!,
                 defaultConverge.map(String.init) ?? "never"))
    print(String(format: "  split follows the moving hot spot: correlation %.3f", figures["moving_split_correlation"]!))
    print(String(format: "  julia after 5 frames: frame time / ideal %.3f static, %.3f balanced",
                 figures["julia_static_over_ideal"]!, figures["julia_balanced_over_ideal"]!))

    for (key, value) in dfr { figures[key] = value }

    let csvPath = NSTemporaryDirectory() + "qgraph-balance.csv", png = NSTemporaryDirectory() + "qgraph-balance.png"
    try csv.write(toFile: csvPath, atomically: true, encoding: .utf8)
    let plot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../../plot-balance.py").standardized.path
    if let result = try? runProcess("/usr/bin/python3", [plot, csvPath, png]), result.status == 0 {
        print("  plot: \(png) (data: \(csvPath))")
    } else {
        print("  plot: python3 with matplotlib not found; data in \(csvPath)")
    }
    printFigures(figures)
}

func correlation(_ a: [Double], _ b: [Double]) -> Double {
    let (ma, mb) = (a.reduce(0, +) / Double(a.count), b.reduce(0, +) / Double(b.count))
    let cov = zip(a, b).reduce(0) { $0 + ($1.0 - ma) * ($1.1 - mb) }
    let (va, vb) = (a.reduce(0) { $0 + ($1 - ma) * ($1 - ma) }, b.reduce(0) { $0 + ($1 - mb) * ($1 - mb) })
    return va > 0 && vb > 0 ? cov / (va * vb).squareRoot() : 0
}

/// Equalizer's DFR on one render node: the Julia zoom at 30 fps, at a
/// frame size whose whole render takes about twice the frame period on one
/// core here (calibrated on the same frames first), run once at full
/// resolution and once with `resolution: dynamic`: the deadline misses of
/// each, and the share of each side the dynamic one settles at (its share
/// after the last frame).
func dynamicResolutionRun() throws -> [String: Double] {
    let (fps, frames) = (30, 150)
    let period = 1.0 / Double(fps)
    let julia = JuliaZoom(maxIterations: 400, centre: (0.5, 0), zoom: 1, phase: 2.2)
    func seconds(width: Int, height: Int) throws -> Double {   // mean render time over the run's frames, whole
        let creator = FrameCreator(name: "calibrate", count: 1)
        let buffer = creator.createBuffer(payloadSize: Frame.byteCount(width: width, height: height), pad: 0)!
        defer { creator.destroyBuffer(buffer, fate: .consumed) }
        let start = monotonicNanoseconds()
        for tick in stride(from: Int64(0), to: Int64(frames), by: 10) {
            let job = FrameJob(tick: tick, number: tick, mediaTime: tick * Int64(period * 1e9), deadline: .max, rate: FrameRate(fps))
            try julia.render(Frame.make(in: buffer, width: width, height: height, job: job), engine: .shared)
        }
        return Double(monotonicNanoseconds() - start) / 1e9 / Double(frames / 10)
    }
    var (width, height, whole) = (320, 180, try seconds(width: 320, height: 180))
    for _ in 0..<2 {   // cost goes with the pixels, roughly: two steps toward twice the period
        let k = (2 * period / whole).squareRoot()
        (width, height) = (Int(Double(width) * k) / 8 * 8, Int(Double(height) * k) / 8 * 8)
        whole = try seconds(width: width, height: height)
    }
    print(String(format: "  dynamic resolution: julia at %d×%d takes %.1f ms a frame whole on one core; at %d fps that is %.2f× the period",
                 width, height, whole * 1e3, fps, whole / period))
    func run(_ resolution: String) throws -> (misses: Int, share: Double) {
        let yaml = """
            queues:
              - {name: render, processor: render, parameters: {width: \(width), height: \(height), fps: \(fps), frames: \(frames), latency: 2}, pool: {count: 6}, threading: thread}
              - {name: work, processor: julia, parameters: {iterations: 400, centre-x: 0.5, phase: 2.2, resolution: \(resolution)}, size: 2, buffers: reuse, threading: thread}
              - {name: sink, processor: framesink, size: 2}
            connections: [render -> work, work -> sink]
            """
        let graph = try GraphFile(yaml: yaml, file: "dfr.yaml", registry: everyProcessor).config.createQueueGraph()
        try graph.start()
        graph.waitUntilFinished()
        let stats = graph.stop()
        precondition(stats.ledgerProblems().isEmpty, "ledger: \(stats.ledgerProblems())")
        return (stats.dropped(.late), (graph.processor(ofQueue: "work") as! RenderNode).scale)
    }
    let full = try run("full"), dynamic = try run("dynamic")
    print(String(format: "  deadline misses of %d frames: %d at full resolution, %d dynamic; the dynamic share ends at %.3f of each side (%.0f×%.0f)",
                 frames, full.misses, dynamic.misses, dynamic.share, Double(width) * dynamic.share, Double(height) * dynamic.share))
    return ["dfr_overload": whole / period, "dfr_full_misses": Double(full.misses), "dfr_misses": Double(dynamic.misses), "dfr_scale": dynamic.share]
}
