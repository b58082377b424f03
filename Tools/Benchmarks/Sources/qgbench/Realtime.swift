// `qgbench realtime [--vs-gstreamer]`: runs Graphs/animation.yaml (render
// process → Julia zoom and blurred plasma → composite → timecode → Y4M file)
// paced in real time for 600 frames at 640×360@60 and at 1280×720@30, and
// reports deadline misses and the CPU it took (percent of one core).
// `--vs-gstreamer` also runs videotestsrc's ball at 640×360@60 with
// gst-launch-1.0 and, as the like-for-like pair, our own ball graph
// (render → ball → framesink) at the same size and rate.
import Foundation
import QueueGraphCore
import QueueGraphFile
import QueueGraphRuntime

/// CPU seconds (user + system) of this process or of its waited-for children.
func cpuSeconds(children: Bool = false) -> Double {
    var usage = rusage()
    getrusage(children ? RUSAGE_CHILDREN.rawValue : RUSAGE_SELF.rawValue, &usage)
    func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
    return seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

struct RealtimeRun {
    var frames = 0
    var delivered = 0
    var misses = 0
    var wall = 0.0
    var cpu = 0.0
    var cpuPercent: Double { cpu / wall * 100 }
}

/// Runs a checked graph to its end and measures it.
func measure(_ file: GraphFile) throws -> RealtimeRun {
    let sinks = file.config.sinkNames
    func delivered(_ stats: GraphStatistics) -> Int { stats.delivered(sinks: sinks) }
    let graph = try file.config.createQueueGraph()
    let (wall0, cpu0) = (monotonicNanoseconds(), cpuSeconds())
    try graph.start()
    while !graph.waitUntilFinished(timeoutNanoseconds: 5_000_000_000) {
        print(String(format: "    … %.0f s: %d frames delivered", Double(monotonicNanoseconds() - wall0) / 1e9, delivered(graph.statistics())))
    }
    let stats = graph.stop()
    var run = RealtimeRun()
    run.wall = Double(monotonicNanoseconds() - wall0) / 1e9
    run.cpu = cpuSeconds() - cpu0
    let problems = stats.ledgerProblems()
    precondition(problems.isEmpty, "ledger: \(problems)")
    run.misses = stats.dropped(.late)
    run.delivered = delivered(stats)
    return run
}

/// Graphs/animation.yaml (or another render graph of Graphs/ with a Y4M
/// sink) with the render process's size, rate, frame count and latency replaced.
func animation(_ graph: String = "animation.yaml", width: Int, height: Int, fps: Int, frames: Int, latency: Double = 2, output: String) throws -> GraphFile {
    let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../../../Graphs/\(graph)").standardized.path
    var lines = try String(contentsOfFile: path, encoding: .utf8).components(separatedBy: "\n")
    guard let render = lines.firstIndex(where: { $0.contains("processor: render") }),
          let parameters = lines[render...].firstIndex(where: { $0.trimmingCharacters(in: .whitespaces).hasPrefix("parameters:") }),
          let sink = lines.firstIndex(where: { $0.contains("path: ") && $0.contains(".y4m") }) else {
        fatalError("\(path): expected a render queue with parameters and a y4m sink path")
    }
    let indent = lines[parameters].prefix { $0 == " " }
    lines[parameters] = "\(indent)parameters: {width: \(width), height: \(height), fps: \(fps), frames: \(frames), latency: \(latency)}"
    lines[sink] = lines[sink].replacingOccurrences(of: #"path: [^}]*"#, with: "path: \(output)", options: .regularExpression)
    return try GraphFile(yaml: lines.joined(separator: "\n"), file: path, registry: everyProcessor)
}

/// gst-launch-1.0 running `pipeline` to its end: CPU percent of one core,
/// or nil when GStreamer or one of the pipeline's elements is missing.
func gstreamerCPU(_ pipeline: String) throws -> Double? {
    guard let gst = ["/usr/bin/gst-launch-1.0", "/usr/local/bin/gst-launch-1.0"].first(where: FileManager.default.isExecutableFile) else { return nil }
    let (wall0, cpu0) = (monotonicNanoseconds(), cpuSeconds(children: true))
    let result = try runProcess(gst, ["-q"] + pipeline.split(separator: " ").map(String.init))
    guard result.status == 0 else { return nil }
    return (cpuSeconds(children: true) - cpu0) / (Double(monotonicNanoseconds() - wall0) / 1e9) * 100
}

func realtimeBenchmark(vsGStreamer: Bool) throws {
    print("realtime benchmark: Graphs/animation.yaml, 600 frames per size, paced in real time; \(ProcessInfo.processInfo.activeProcessorCount) cores")
    var figures: [String: Double] = [:]
    for (width, height, fps) in [(640, 360, 60), (1280, 720, 30)] {
        let output = NSTemporaryDirectory() + "qgbench-\(width).y4m"
        defer { try? FileManager.default.removeItem(atPath: output) }
        let run = try measure(try animation(width: width, height: height, fps: fps, frames: 600, output: output))
        print(String(format: "  %4d×%-4d @ %d fps: %d frames delivered, %d deadline misses, %.1f s, CPU %.1f %% of a core",
                     width, height, fps, run.delivered, run.misses, run.wall, run.cpuPercent))
        figures["misses_\(width)"] = Double(run.misses)
        figures["cpu_pct_\(width)"] = run.cpuPercent
        figures["delivered_\(width)"] = Double(run.delivered)
    }
    if vsGStreamer {
        let ball = try measure(try GraphFile(launch: "render width=640 height=360 fps=60 frames=600 ! ball ! framesink", registry: everyProcessor))
        print(String(format: "  like for like, 640×360 @ 60 fps, 600 frames: QueueGraph render ! ball ! framesink CPU %.1f %% (%d misses)",
                     ball.cpuPercent, ball.misses))
        figures["cpu_pct_ball_640"] = ball.cpuPercent
        if let gst = try gstreamerCPU("videotestsrc pattern=ball num-buffers=600 ! video/x-raw,width=640,height=360,framerate=60/1 ! videoconvert ! fakesink sync=true") {
            print(String(format: "  GStreamer videotestsrc pattern=ball ! videoconvert ! fakesink sync=true: CPU %.1f %%", gst))
            figures["gst_cpu_pct_640"] = gst
            figures["cpu_ratio_ball_vs_gst"] = ball.cpuPercent / gst
            figures["cpu_ratio_animation_vs_gst"] = figures["cpu_pct_640"]! / gst
        } else {
            print("  --vs-gstreamer: gst-launch-1.0 or videotestsrc missing (apt-get install gstreamer1.0-tools gstreamer1.0-plugins-base); skipped")
        }
    }
    printFigures(figures)
}
