// `qgbench scale [--vs-gstreamer]`: how the cost of a step grows with the
// graph. Chains of 10, 100, 1 000 and 10 000 `identity` queues on one thread
// (`threading: none`), written as graph files and loaded as a user would;
// then 64 threads of 16 queues each (one chain, a `thread` queue every 16).
// A step is one queue handling one buffer: ns per step is the run's time
// (start to end of stream) over buffers × queues. `start_ms_10000` is
// reading, checking, building and starting the 10 000-queue file.
// `--vs-gstreamer` runs `fakesrc ! identity × n ! fakesink` with
// gst-launch-1.0 at 100 and 1 000 elements in the same run.
import Foundation
import QueueGraphCore
import QueueGraphFile
import QueueGraphRuntime

/// A graph file: `testsrc` → `length` identity queues → `nullsink`, a `thread`
/// queue every `threadEvery` queues (0: all on one thread).
func chainFile(length: Int, buffers: Int, threadEvery: Int = 0) -> String {
    var text = """
    queues:
      - name: src
        processor: testsrc
        parameters: {count: \(buffers), size: 64}
        pool: {count: 64, buffer-size: 64}

    """
    for i in 0..<length {
        let thread = threadEvery > 0 && i % threadEvery == 0 ? "\n    threading: thread" : ""
        text += "  - name: q\(i)\n    processor: identity\n    size: 8\(thread)\n"
    }
    text += "  - name: sink\n    processor: nullsink\n    size: 8\nconnections:\n  - src -> q0\n"
    for i in 1..<length { text += "  - q\(i - 1) -> q\(i)\n" }
    text += "  - q\(length - 1) -> sink\n"
    return text
}

struct ScaleRun {
    var stepNanoseconds: Double
    var startMilliseconds: Double
}

/// Loads, starts and runs a chain; every buffer must reach the sink.
func scaleRun(length: Int, buffers: Int, threadEvery: Int = 0) throws -> ScaleRun {
    let text = chainFile(length: length, buffers: buffers, threadEvery: threadEvery)
    let t0 = monotonicNanoseconds()
    let file = try GraphFile(yaml: text, file: "chain\(length).yaml")
    let graph = try file.config.createQueueGraph()
    try graph.start()
    let t1 = monotonicNanoseconds()
    graph.waitUntilFinished()
    let t2 = monotonicNanoseconds()
    let stats = graph.stop()
    precondition(stats.ledgerProblems().isEmpty, "ledger: \(stats.ledgerProblems())")
    precondition(stats.delivered(sinks: ["sink"]) == buffers, "lost buffers: \(stats.delivered(sinks: ["sink"])) of \(buffers)")
    let steps = Double(buffers) * Double(length + 2)   // the source and the sink step too
    return ScaleRun(stepNanoseconds: Double(t2 - t1) / steps, startMilliseconds: Double(t1 - t0) / 1e6)
}

func scaleBenchmark(vsGStreamer: Bool) throws {
    let runs = 3
    let stepsPerRun = Double(ProcessInfo.processInfo.environment["QG_BENCH_STEPS"] ?? "") ?? 1e7
    print("scale benchmark: identity chains on one thread, ~\(Int(stepsPerRun)) steps per run, median of \(runs) runs; \(ProcessInfo.processInfo.activeProcessorCount) cores")
    var figures: [String: Double] = [:]
    var steps: [Int: Double] = [:]
    for length in [10, 100, 1_000, 10_000] {
        let buffers = max(200, Int(stepsPerRun) / (length + 2))
        let results = try (0..<runs).map { _ in try scaleRun(length: length, buffers: buffers) }
        let step = median(results.map(\.stepNanoseconds))
        let start = median(results.map(\.startMilliseconds))
        steps[length] = step
        figures["step_ns_\(length)"] = step
        print(String(format: "  %6d queues, %7d buffers: %6.1f ns per queue per buffer; start %7.1f ms", length, buffers, step, start))
        if length == 10_000 { figures["start_ms_10000"] = start }
    }
    figures["growth"] = steps[10_000]! / steps[10]!
    print(String(format: "  growth (10 000 / 10): %.2f", figures["growth"]!))
    let threaded = median(try (0..<runs).map { _ in try scaleRun(length: 1_024, buffers: 20_000, threadEvery: 16).stepNanoseconds })
    figures["step_ns_64x16"] = threaded
    print(String(format: "  64 threads × 16 queues, 20000 buffers: %6.1f ns per queue per buffer", threaded))
    if vsGStreamer {
        for length in [100, 1_000] {
            let pipeline = "fakesrc num-buffers=NUM sizetype=fixed sizemax=64 ! " + Array(repeating: "identity", count: length).joined(separator: " ! ") + " ! fakesink"
            let buffers = length == 100 ? 50_000 : 5_000
            guard let perBuffer = gstreamer(pipeline, buffers: buffers) else {
                print("  --vs-gstreamer: gst-launch-1.0 not installed (apt-get install gstreamer1.0-tools); skipped")
                break
            }
            let gst = perBuffer / Double(length + 2)
            figures["gst_step_ns_\(length)"] = gst
            figures["gst_ratio_\(length)"] = gst / steps[length]!
            print(String(format: "  GStreamer, %d identities: %6.1f ns per element per buffer; GStreamer / QueueGraph %.1f×", length, gst, gst / steps[length]!))
        }
    }
    printFigures(figures)
}
