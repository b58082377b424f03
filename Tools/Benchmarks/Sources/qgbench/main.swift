// qgbench NAME [--vs-gstreamer]: runs one benchmark, prints readable lines and,
// last, one JSON object of its figures. Run it through Tools/bench, which
// builds in release and preloads the malloc counter.
import Foundation
import MallocInterposerSwift
import QueueGraphCore
import QueueGraphFile
import QueueGraphGL
import QueueGraphRender
import QueueGraphRuntime

/// Every processor graph files may name here: the core's, render's and GL's.
let everyProcessor = ProcessorRegistry.withRenderAndGL

/// Sends `count` buffers as fast as the graph takes them.
final class BenchSource: BufferSource, @unchecked Sendable {
    let count: Int
    var sent = 0
    init(count: Int) { self.count = count }
    func produce(context: ProcessContext) -> ProduceResult {
        guard sent < count else { return .endOfStream }
        guard let buffer = context.acquireBuffer(size: 64) else { return .waitingForBuffer }
        buffer.sequence = UInt64(sent)
        if context.sendTo(0, buffer) == .full { context.doneBuffer(buffer); return .produced }
        sent += 1
        return .produced
    }
}

struct HopResult {
    var nanosecondsPerBuffer: Double
    var mallocs: Int
}

/// src ─▶ boundary 1 ─▶ … ─▶ boundary n (the sink), every boundary a `thread` queue of `depth`.
func hop(count: Int, boundaries: Int, depth: Int) throws -> HopResult {
    var config = QueueGraphConfig(residencySampleInterval: 1024)
    config.queues.append(QueueConfig(name: "src", buffers: .provider, processor: { _ in BenchSource(count: count) },
                                     creator: { _ in BufferPool(name: "bench", count: max(256, depth * (boundaries + 1) * 2), payloadCapacity: 64) }))
    var previous = "src"
    for i in 1...boundaries {
        let last = i == boundaries
        config.queues.append(QueueConfig(name: "q\(i)", size: depth, threading: .thread, outPads: last ? 0 : 1,
                                         processor: { _ in last ? CountingSink() as any BufferProcessor : Forwarder() }))
        config.connections.append(Connection(from: previous, to: "q\(i)"))
        previous = "q\(i)"
    }
    let graph = try config.createQueueGraph()
    MallocInterposerSwift.reset()
    MallocInterposerSwift.hook()
    let start = monotonicNanoseconds()
    try graph.start()
    graph.waitUntilFinished()
    let elapsed = monotonicNanoseconds() - start
    MallocInterposerSwift.unhook()
    let mallocs = MallocInterposerSwift.getStatistics().mallocCount
    let stats = graph.stop()
    precondition(stats.ledgerProblems().isEmpty, "ledger: \(stats.ledgerProblems())")
    if ProcessInfo.processInfo.environment["QG_BENCH_VERBOSE"] != nil { print(stats.threads) }
    precondition(stats.pools[0].consumed == count, "lost buffers")
    return HopResult(nanosecondsPerBuffer: Double(elapsed) / Double(count), mallocs: mallocs)
}

func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }

/// The last line of every benchmark: its figures as one JSON object, keys sorted.
func printFigures(_ figures: [String: Double]) {
    print("{" + figures.sorted { $0.key < $1.key }.map { String(format: "\"%@\": %.4g", $0.key, $0.value) }.joined(separator: ", ") + "}")
}

/// The median of `runs` runs of ns per buffer.
func medianHop(count: Int, boundaries: Int, depth: Int, runs: Int) throws -> Double {
    try median((0..<runs).map { _ in try hop(count: count, boundaries: boundaries, depth: depth).nanosecondsPerBuffer })
}

/// `path` with `arguments`, not started. Tools/bench preloads the malloc
/// counter into qgbench; a child (gst-launch, python3) must run without it.
func childProcess(_ path: String, _ arguments: [String]) -> Process {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.filter { $0.key != "LD_PRELOAD" }
    return process
}

/// Runs `path` with `arguments`; returns its exit status and standard output.
func runProcess(_ path: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
    let process = childProcess(path, arguments)
    let output = Pipe()
    process.standardOutput = output
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// Runs a GStreamer pipeline (`NUM` stands for the buffer count) with
/// gst-launch-1.0 and returns ns per buffer: the difference between a run of
/// `buffers` and one of a tenth as many, which cancels process start-up and
/// plugin loading.
func gstreamer(_ pipeline: String, buffers: Int) -> Double? {
    guard let path = ["/usr/bin/gst-launch-1.0", "/usr/local/bin/gst-launch-1.0"].first(where: FileManager.default.isExecutableFile) else { return nil }
    func run(_ count: Int) -> UInt64? {
        let arguments = ["-q"] + pipeline.replacingOccurrences(of: "NUM", with: "\(count)").split(separator: " ").map(String.init)
        let start = monotonicNanoseconds()
        guard let result = try? runProcess(path, arguments), result.status == 0 else { return nil }
        return monotonicNanoseconds() - start
    }
    guard let short = run(buffers / 10), let long = run(buffers) else { return nil }
    return Double(long > short ? long - short : 0) / Double(buffers - buffers / 10)
}

func hopBenchmark(vsGStreamer: Bool) throws {
    let count = Int(ProcessInfo.processInfo.environment["QG_BENCH_BUFFERS"] ?? "") ?? 2_000_000
    let runs = 5
    print("hop benchmark: \(count) buffers of 64 bytes per run, median of \(runs) runs; \(ProcessInfo.processInfo.activeProcessorCount) cores")
    _ = try hop(count: count / 10, boundaries: 1, depth: 64)   // warm-up
    let stepped = try median((0..<runs).map { _ in try steppedHop(count: count) })
    print(String(format: "  same pair on one thread (stepped): %7.1f ns/buffer", stepped))
    let depth64 = try medianHop(count: count, boundaries: 1, depth: 64, runs: runs)
    print(String(format: "  1 thread boundary,  depth 64: %7.1f ns/buffer  (%5.2f M buffers/s)", depth64, 1e3 / depth64))
    let depth64x3 = try medianHop(count: count, boundaries: 3, depth: 64, runs: runs)
    print(String(format: "  3 thread boundaries, depth 64: %7.1f ns/buffer  (%5.2f M buffers/s)", depth64x3, 1e3 / depth64x3))
    let depth1 = try medianHop(count: count / 20, boundaries: 1, depth: 1, runs: runs)
    print(String(format: "  1 thread boundary,  depth 1:  %7.1f ns/buffer  (%5.2f M buffers/s)", depth1, 1e3 / depth1))
    // Mallocs per buffer after warm-up: the difference between a long and a
    // short run cancels the fixed cost of starting threads.
    let short = try hop(count: count / 10, boundaries: 1, depth: 64).mallocs
    let long = try hop(count: count, boundaries: 1, depth: 64).mallocs
    let perBuffer = Double(max(0, long - short)) / Double(count - count / 10)
    print(String(format: "  heap allocations per buffer after warm-up: %.4f (short run %d, long run %d)", perBuffer, short, long))
    var figures: [String: Double] = [
        "hop_ns_depth64": depth64, "hop_ns_depth64_3threads": depth64x3, "hop_ns_depth1": depth1,
        "buffers_per_s_depth64": 1e9 / depth64, "mallocs_per_buffer": perBuffer, "stepped_ns": stepped,
    ]
    if vsGStreamer {
        let n = 1_000_000
        if let g1 = gstreamer("fakesrc num-buffers=NUM ! queue ! fakesink", buffers: n),
           let g3 = gstreamer("fakesrc num-buffers=NUM ! queue ! queue ! queue ! fakesink", buffers: n) {
            print(String(format: "  GStreamer fakesrc ! queue ! fakesink: %.0f ns/buffer; 3 queues: %.0f ns/buffer", g1, g3))
            print(String(format: "  ratio GStreamer / QueueGraph: %.1f× (1 boundary), %.1f× (3 boundaries)", g1 / depth64, g3 / depth64x3))
            figures["gst_ns_1queue"] = g1
            figures["gst_ns_3queues"] = g3
            figures["gst_ratio_1queue"] = g1 / depth64
            figures["gst_ratio_3queues"] = g3 / depth64x3
        } else {
            print("  --vs-gstreamer: gst-launch-1.0 not installed (apt-get install gstreamer1.0-tools); skipped")
        }
    }
    printFigures(figures)
}

/// The same src ─▶ sink pair on one thread, stepped: the cost of the
/// machinery without any thread crossing.
func steppedHop(count: Int) throws -> Double {
    let graph = try QueueGraphConfig(residencySampleInterval: 1024)
        .adding(QueueConfig(name: "src", buffers: .provider, processor: { _ in BenchSource(count: count) },
                            creator: { _ in BufferPool(name: "bench", count: 256, payloadCapacity: 64) }))
        .adding(QueueConfig(name: "q1", size: 64, outPads: 0, processor: { _ in CountingSink() }))
        .connecting("src", to: "q1")
        .createSteppedGraph()
    let start = monotonicNanoseconds()
    while graph.step() != nil {}
    return Double(monotonicNanoseconds() - start) / Double(count)
}

/// Runs `binary hopns COUNT` and returns the ns per buffer it prints.
func childHop(_ binary: String, count: Int) throws -> Double {
    let (status, output) = try runProcess(binary, ["hopns", "\(count)"])
    guard status == 0, let ns = Double(output.trimmingCharacters(in: .whitespacesAndNewlines)) else {
        throw BenchError("\(binary) hopns failed (status \(status))")
    }
    return ns
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Runs a shell command, failing loudly.
@discardableResult
func shell(_ command: String) throws -> String {
    let (status, output) = try runProcess("/bin/sh", ["-c", command])
    guard status == 0 else { throw BenchError("'\(command)' failed (status \(status))") }
    return output
}

/// The hop (1 boundary, depth 64) three ways, interleaved round by round so
/// that the machine's drift hits all three alike: a build without the LTTng
/// trait, this build with no session, and this build with every `qgraph`
/// event enabled in a session (discard mode, 8 × 16 MiB sub-buffers).
func traceBenchmark() throws {
    guard Tracing.isCompiledIn else { throw BenchError("qgbench trace needs a build with the LTTng trait (run it through Tools/bench trace)") }
    guard let noTrace = ProcessInfo.processInfo.environment["QGBENCH_NO_TRACE"] else {
        throw BenchError("QGBENCH_NO_TRACE must name a qgbench built with --disable-default-traits (Tools/bench trace sets it)")
    }
    let me = CommandLine.arguments[0]
    let count = Int(ProcessInfo.processInfo.environment["QG_BENCH_BUFFERS"] ?? "") ?? 1_000_000
    let rounds = 5
    print("trace benchmark: hop through 1 boundary at depth 64, \(count) buffers per run, \(rounds) rounds, median per way")
    try shell("pgrep -x lttng-sessiond >/dev/null || lttng-sessiond --daemonize --no-kernel")
    let session = "qgbench-\(getpid())"
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent(session).path
    try shell("lttng create \(session) --output=\(directory) >/dev/null && lttng enable-channel -u big -s \(session) --subbuf-size=16M --num-subbuf=8 >/dev/null && lttng enable-event -u -s \(session) -c big 'qgraph:*' >/dev/null")
    defer {
        _ = try? shell("lttng destroy \(session) >/dev/null")
        try? FileManager.default.removeItem(atPath: directory)
    }
    var off: [Double] = [], noSession: [Double] = [], enabled: [Double] = []
    for round in 1...rounds {
        off.append(try childHop(noTrace, count: count))
        noSession.append(try childHop(me, count: count))
        try shell("lttng start \(session) >/dev/null")
        enabled.append(try childHop(me, count: count))
        try shell("lttng stop \(session) >/dev/null")
        print(String(format: "  round %d: trait off %6.1f ns, no session %6.1f ns, all events enabled %7.1f ns", round, off.last!, noSession.last!, enabled.last!))
    }
    let (o, n, e) = (median(off), median(noSession), median(enabled))
    let stats = try shell("lttng list \(session) 2>/dev/null | grep -i 'discarded' | sort -u || true")
    print(String(format: "  median: trait off %.1f ns, no session %.1f ns (×%.3f), all events enabled %.1f ns (×%.2f)", o, n, n / o, e, e / o))
    if !stats.isEmpty { print("  \(stats.trimmingCharacters(in: .whitespacesAndNewlines))") }
    print(String(format: "{\"hop_ns_trait_off\": %.4g, \"hop_ns_no_session\": %.4g, \"hop_ns_all_enabled\": %.4g, \"ratio_no_session\": %.4g, \"ratio_all_enabled\": %.4g}", o, n, e, n / o, e / o))
}

let arguments = CommandLine.arguments.dropFirst()
switch arguments.first {
case "hop":
    try hopBenchmark(vsGStreamer: arguments.contains("--vs-gstreamer"))
case "stepped":   // for profiling the machinery alone
    print(String(format: "stepped: %.1f ns/buffer", try steppedHop(count: 20_000_000)))
case "trace":
    try traceBenchmark()
case "loadtest":
    loadTest()
case "gl":
    try glBenchmark()
case "balance":
    let damping = arguments.firstIndex(of: "--damping").flatMap { arguments.dropFirst($0 - arguments.startIndex + 1).first }.flatMap(Double.init)
    try balanceBenchmark(damping: damping ?? 0.25)
case "child":
    try childBenchmark(vsGStreamer: arguments.contains("--vs-gstreamer"))
case "child-part":   // the child `child` starts: child-part SIZE COUNT read-all|stamps --qg-child QUEUE CHANNEL
    let words = Array(arguments)
    guard words.count >= 4, let size = Int(words[1]), let count = Int(words[2]), let request = ChildProgram.request(in: words) else {
        print("usage: qgbench child-part SIZE COUNT read-all|stamps --qg-child QUEUE CHANNEL")
        exit(2)
    }
    let config = childConfig(size: size, count: count, touchAll: words[3] == "read-all")
    exit(ChildProgram.run(config: config, queue: request.queue, channel: request.channel))
case "media":
    try mediaBenchmark(vsGStreamer: arguments.contains("--vs-gstreamer"))
case "scale":
    try scaleBenchmark(vsGStreamer: arguments.contains("--vs-gstreamer"))
case "pull":
    try pullBenchmark()
case "realtime":
    try realtimeBenchmark(vsGStreamer: arguments.contains("--vs-gstreamer"))
case "reconfigure":
    try reconfigureBenchmark()
case "remote":
    try remoteBenchmark()
case "remote-worker":   // the worker `remote` starts in its host namespace
    try remoteWorker(Array(arguments))
case "top-client":   // the client `reconfigure` starts: top-client SOCKET
    try topClient(path: arguments.dropFirst().first ?? "")
case "hopns":     // one hop run, for `trace`: prints only ns per buffer
    print(try hop(count: Int(arguments.dropFirst().first ?? "") ?? 1_000_000, boundaries: 1, depth: 64).nanosecondsPerBuffer)
case "hop1":      // for profiling one boundary alone
    print(String(format: "1 boundary: %.1f ns/buffer", try hop(count: 20_000_000, boundaries: 1, depth: 64).nanosecondsPerBuffer))
default:
    print("usage: qgbench hop [--vs-gstreamer] | trace | loadtest | gl | realtime [--vs-gstreamer] | reconfigure | remote | pull | balance [--damping D] | child [--vs-gstreamer] | scale [--vs-gstreamer] | media [--vs-gstreamer]")
    exit(2)
}
