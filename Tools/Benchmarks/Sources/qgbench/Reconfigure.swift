// `qgbench reconfigure`: live changes to a running graph (issue 20).
//
// - swap: Graphs/animation.yaml at 640×360@60 for 600 frames, its blur
//   replaced by a Gaussian blur and back every 250 ms. Each splice parks
//   every thread once: that stall, p99 over every swap (`swap_stall_ms_p99`,
//   against the 16.7 ms frame period); frames lost (abandoned anywhere,
//   `frames_lost`); deadline misses against the same run without swaps.
// - parameter: testsrc → a stage that records the value it processed each
//   buffer with, as fast as the graph goes; 1000 changes: how long one takes
//   to reach the processor (`param_apply_us_p99`) and how many buffers it
//   processed with the old value after the change returned (`param_buffers_late`).
// - top: the animation with and without a `qgraph top` client (this program,
//   `top-client`, in another process: the same client and view code) polling
//   the control endpoint at 10 Hz: what it adds to the graph's process is
//   the endpoint thread's CPU time, in percent of one core (`top_cpu_pct`,
//   median of 3 runs); the whole process's CPU with and without the client
//   is printed too (`top_process_cpu_delta_pct`, noisier than the figure).
import Foundation
import QueueGraphControl
import QueueGraphCore
import QueueGraphFile
import QueueGraphRuntime
import Synchronization

/// Records, per buffer, whether it was processed with the newest value asked for.
final class ValueStage: LiveParameters, @unchecked Sendable {
    private var value = 0
    /// The value each buffer saw, from the stage's thread; read after the stop.
    private let seen = Mutex<(processed: Int, lastChange: Int, late: Int)>((0, 0, 0))

    func process(_ buffer: Buffer, context: ProcessContext) -> ProcessResult {
        let wanted = wantedValue.load(ordering: .acquiring)
        seen.withLock { s in
            s.processed += 1
            if value != wanted && returned.load(ordering: .acquiring) == wanted { s.late += 1 }   // the change returned, and this buffer missed it
        }
        context.doneBuffer(buffer)
        return .ok
    }

    func setParameter(_ name: String, to value: ParameterValue) {
        if case .integer(let v) = value { self.value = v }
    }

    /// The value the bench asked for, and the one whose `setParameter` has returned.
    let wantedValue = Atomic<Int>(0)
    let returned = Atomic<Int>(0)
    var late: Int { seen.withLock { $0.late } }
    var processed: Int { seen.withLock { $0.processed } }
}

func percentile(_ values: [Double], _ p: Double) -> Double {
    let sorted = values.sorted()
    return sorted.isEmpty ? .nan : sorted[min(sorted.count - 1, Int((Double(sorted.count - 1) * p).rounded(.up)))]
}

/// CPU time of this process's threads named `name` so far (`/proc/self/task/*/schedstat`: nanoseconds on a CPU).
func threadCPUNanoseconds(named name: String) -> Double {
    let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
    return tasks.reduce(0.0) { sum, task in
        guard (try? String(contentsOfFile: "/proc/self/task/\(task)/comm", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) == name,
              let stat = try? String(contentsOfFile: "/proc/self/task/\(task)/schedstat", encoding: .utf8),
              let onCPU = stat.split(separator: " ").first.flatMap({ Double($0) }) else { return sum }
        return sum + onCPU
    }
}

/// The animation, its blur swapped every `every` seconds (0: never): the parked times, late frames, frames lost,
/// the process's CPU % and its control endpoint thread's.
/// What one run of the animation measured.
struct AnimationRun {
    var stalls: [Double] = []
    var late = 0
    var lost = 0
    var cpuPercent = 0.0
    var endpointPercent = 0.0
    /// A `stats` round trip in µs, measured after a run with the top client.
    var requestMicroseconds = 0.0
}

func swapRun(every: Double, topClient: Bool) throws -> AnimationRun {
    let file = try animation(width: 640, height: 360, fps: 60, frames: 600, output: "/dev/null")
    let graph = try file.config.createQueueGraph()
    let endpoint = ControlEndpoint(graph: graph, name: "qgbench-reconfigure")
    try endpoint.open()
    defer { endpoint.close() }
    let (wall0, cpu0) = (monotonicNanoseconds(), cpuSeconds())
    try graph.start()
    var client: Process?
    if topClient {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
        process.arguments = ["top-client", endpoint.path]
        try process.run()
        client = process
    }
    var run = AnimationRun()
    var current = "blur"
    var next = monotonicNanoseconds()
    while !graph.waitUntilFinished(timeoutNanoseconds: 20_000_000) {
        guard every > 0, monotonicNanoseconds() >= next else { continue }
        next = monotonicNanoseconds() + UInt64(every * 1e9)
        let line = current == "blur" ? "gaussianblur sigma=1.5 name=soft" : "boxblur radius=3 name=blur"
        do {
            let report = try graph.replaceSegment([current], with: try GraphFile.segment(launch: line, registry: everyProcessor))
            run.stalls.append(Double(report.parkedNanoseconds) / 1e6)
            run.lost += report.abandoned
            current = current == "blur" ? "soft" : "blur"
        } catch let error as LiveChangeError where error.code == .refused {
            break   // the graph ended meanwhile
        }
    }
    run.endpointPercent = threadCPUNanoseconds(named: "qg-control") / Double(monotonicNanoseconds() - wall0) * 100
    client?.terminate()
    client?.waitUntilExit()
    if topClient {   // what one request costs, round trip, in this process
        let local = try ControlClient(path: endpoint.path)
        let start = monotonicNanoseconds()
        for _ in 0..<200 { _ = try local.call("stats") }
        run.requestMicroseconds = Double(monotonicNanoseconds() - start) / 200 / 1e3
    }
    let stats = graph.stop()
    run.cpuPercent = (cpuSeconds() - cpu0) / (Double(monotonicNanoseconds() - wall0) / 1e9) * 100
    precondition(stats.ledgerProblems().isEmpty, "ledger: \(stats.ledgerProblems())")
    run.late = stats.dropped(.late)
    run.lost += stats.pools.reduce(0) { $0 + $1.abandoned }
    return run
}

/// 1000 parameter changes while buffers flow.
func parameterRun() throws -> (applyMicroseconds: [Double], late: Int, processed: Int) {
    let stage = ValueStage()
    var config = QueueConfig(name: "stage", size: 64, threading: .thread, outPads: 0, processor: { _ in stage })
    config.liveParameters = [ParameterSpec("value", .integer(0...Int.max), default: .integer(0), live: true, "the value")]
    let graph = try QueueGraphConfig()
        .adding(QueueConfig(name: "src", size: 64, buffers: .provider, processor: { _ in TestSource(count: 0, size: 64, pattern: .zeros) },
                            creator: { _ in BufferPool(name: "src", count: 128, payloadCapacity: 64) }))
        .adding(config)
        .connecting("src", to: "stage")
        .createQueueGraph()
    try graph.start()
    var apply: [Double] = []
    for value in 1...1000 {
        stage.wantedValue.store(value, ordering: .releasing)
        let start = monotonicNanoseconds()
        try graph.setParameter(queue: "stage", "value", to: "\(value)")
        apply.append(Double(monotonicNanoseconds() - start) / 1e3)
        stage.returned.store(value, ordering: .releasing)
        usleep(200)
    }
    graph.stop(.abandon)
    return (apply, stage.late, stage.processed)
}

/// What `qgraph top -d 0.1` does to the endpoint: a stats request and a screen every 100 ms, until terminated.
func topClient(path: String) throws -> Never {
    let client = try ControlClient(path: path)
    var view = TopView(dump: (try client.call("dump")) as? [String: Any] ?? [:])
    while true {
        let stats = try client.call("stats") as? [String: Any] ?? [:]
        _ = view.render(stats, at: Date().timeIntervalSince1970)
        usleep(100_000)
    }
}

func reconfigureBenchmark() throws {
    print("reconfigure benchmark: live changes; \(ProcessInfo.processInfo.activeProcessorCount) cores")
    var stalls: [Double] = []
    var lost = 0
    var lateSwap: [Double] = [], lateBase: [Double] = [], cpuBase: [Double] = [], cpuTop: [Double] = [], endpoint: [Double] = []
    for round in 1...3 {
        // Alternated, so that neither always runs first.
        let first = try swapRun(every: 0, topClient: round % 2 == 0)
        let second = try swapRun(every: 0, topClient: round % 2 == 1)
        let (base, top) = round % 2 == 0 ? (second, first) : (first, second)
        let swap = try swapRun(every: 0.25, topClient: false)
        stalls += swap.stalls
        lost += swap.lost + base.lost + top.lost
        (lateBase, lateSwap, cpuBase, cpuTop) = (lateBase + [Double(base.late)], lateSwap + [Double(swap.late)], cpuBase + [base.cpuPercent], cpuTop + [top.cpuPercent])
        endpoint.append(top.endpointPercent)
        print(String(format: "  round %d: animation %.1f %% CPU, with top at 10 Hz %.1f %% (its endpoint thread %.2f %%; a stats request: %.0f µs); %d swaps, stall p50 %.2f ms max %.2f ms; late frames %d without swaps, %d with",
                     round, base.cpuPercent, top.cpuPercent, top.endpointPercent, top.requestMicroseconds, swap.stalls.count, percentile(swap.stalls, 0.5), swap.stalls.max() ?? .nan, base.late, swap.late))
    }
    let parameter = try parameterRun()
    print(String(format: "  parameter: 1000 changes while %d buffers flowed: applied in p50 %.1f µs, p99 %.1f µs; %d buffers processed with the old value after a change returned",
                 parameter.processed, percentile(parameter.applyMicroseconds, 0.5), percentile(parameter.applyMicroseconds, 0.99), parameter.late))
    // What top adds to the graph's process is its endpoint thread's work (the client runs in its own
    // process); the whole process's CPU with and without it differs by more than that from run to run.
    let topCPU = median(endpoint)
    let processDelta = median(zip(cpuTop, cpuBase).map { $0 - $1 })
    print(String(format: "  swap stall p99 %.2f ms over %d swaps (frame period 16.67 ms); frames lost %d; late frames median %.0f without swaps, %.0f with; top at 10 Hz adds %.2f %% CPU (endpoint thread; the whole process differed by %.1f %%)",
                 percentile(stalls, 0.99), stalls.count, lost, median(lateBase), median(lateSwap), topCPU, processDelta))
    print(String(format: "{\"swap_stall_ms_p99\": %.4g, \"swap_stall_ms_p50\": %.4g, \"swaps\": %d, \"frames_lost\": %d, \"late_frames_base\": %.0f, \"late_frames_swapping\": %.0f, \"param_apply_us_p99\": %.4g, \"param_buffers_late\": %d, \"top_cpu_pct\": %.3g, \"top_process_cpu_delta_pct\": %.3g}",
                 percentile(stalls, 0.99), percentile(stalls, 0.5), stalls.count, lost, median(lateBase), median(lateSwap),
                 percentile(parameter.applyMicroseconds, 0.99), parameter.late, topCPU, processDelta))
}
