// `qgbench media [--vs-gstreamer]`: real media through FFmpeg's libraries,
// against the ffmpeg CLI doing the same work in the same run.
//
// The input is made by QueueGraph itself and kept for later runs: 10 s of
// 1920×1080 @ 30 fps (the render engine's plasma under a timecode) with a
// tone, encoded as H.264 (preset medium) + AAC. Then, median of 3 each:
// - decode only: `mediasrc ! nullsink` (fast, video, 2 decoder threads)
//   against `ffmpeg -threads 2 -i in.mp4 -an -f null -`;
// - transcode 1080p → 720p H.264 (veryfast, crf 23), video: `mediasrc !
//   videoscale ! mediasink` against `ffmpeg -vf scale=1280:720 -c:v libx264
//   -preset veryfast`, and with --vs-gstreamer `filesrc ! decodebin !
//   videoconvert ! videoscale ! x264enc speed-preset=veryfast pass=qual
//   quantizer=23 ! mp4mux ! filesink`;
// - mallocs per frame in the steady state of decode → scale → sink (the
//   counter sees FFmpeg's own allocations as well as QueueGraph's);
// - a live preview of the file through the GL pass (mediasrc pace live,
//   300 ms latency → videoconvert → glupload → glshader → glreadback →
//   framesink): deadline misses.
import Foundation
import MallocInterposerSwift
import QueueGraphCore
import QueueGraphFile
import QueueGraphMedia
import QueueGraphRuntime

let mediaProcessors = {
    var registry = everyProcessor
    registry.registerMedia()
    return registry
}()

/// Runs a graph file's text to its end: wall seconds, statistics, the graph.
func runMedia(_ yaml: String, name: String) throws -> (seconds: Double, stats: GraphStatistics, graph: QueueGraph) {
    let graph = try GraphFile(yaml: yaml, file: name, registry: mediaProcessors).config.createQueueGraph()
    let start = monotonicNanoseconds()
    try graph.start()
    graph.waitUntilFinished()
    let seconds = Double(monotonicNanoseconds() - start) / 1e9
    let stats = graph.stop()
    precondition(stats.ledgerProblems().isEmpty, "ledger: \(stats.ledgerProblems())")
    return (seconds, stats, graph)
}

/// Wall seconds of a program run to its end; nil when it failed.
func timed(_ path: String, _ arguments: [String]) throws -> Double? {
    let start = monotonicNanoseconds()
    let process = childProcess(path, arguments)
    process.standardError = FileHandle.nullDevice
    try process.run()
    process.waitUntilExit()
    return process.terminationStatus == 0 ? Double(monotonicNanoseconds() - start) / 1e9 : nil
}

/// The bench's input, made once (kept in the temporary directory).
func mediaInput() throws -> String {
    let path = NSTemporaryDirectory() + "qgbench-media-1080p.mp4"
    if FileManager.default.fileExists(atPath: path) { return path }
    print("  making the input (once): 10 s of 1920×1080 @ 30 fps plasma with a timecode and a tone …")
    let intermediate = NSTemporaryDirectory() + "qgbench-media-1080p-ultrafast.mkv"
    defer { try? FileManager.default.removeItem(atPath: intermediate) }
    // Rendered in real time (the render engine's clock), encoded fast enough to keep up; then encoded again at leisure.
    let render = try runMedia("""
        queues:
          - {name: render, processor: render, parameters: {width: 1920, height: 1080, fps: 30, frames: 300, latency: 30}, pool: {count: 40}, threading: thread}
          - {name: plasma, processor: plasma, size: 4, buffers: reuse, threading: thread}
          - {name: overlay, processor: timecode, size: 4, buffers: reuse}
          - {name: tone, processor: tonesrc, parameters: {seconds: 10}}
          - {name: out, processor: mediasink, parameters: {path: '\(intermediate)', preset: ultrafast, crf: 18}, size: 32, threading: thread}
        connections: [render -> plasma, plasma -> overlay, overlay -> out, tone -> out]
        """, name: "make-input.yaml")
    print("    rendered: \(render.stats.delivered(sinks: ["out"])) buffers, \(render.stats.dropped(.late)) frames late")
    _ = try runMedia("""
        queues:
          - {name: source, processor: mediasrc, parameters: {path: '\(intermediate)', streams: video+audio}, threading: thread}
          - {name: out, processor: mediasink, parameters: {path: '\(path)', preset: medium, crf: 20, gop: 60}, size: 16, threading: thread}
        connections: [source:0 -> out, source:1 -> out]
        """, name: "encode-input.yaml")
    return path
}

func mediaBenchmark(vsGStreamer: Bool) throws {
    let runs = 3
    print("media benchmark: 10 s 1920×1080 @ 30 fps H.264 + AAC, median of \(runs) runs; \(ProcessInfo.processInfo.activeProcessorCount) cores")
    let input = try mediaInput()
    let frames = 300.0
    let ffmpeg = "/usr/bin/ffmpeg"
    var figures: [String: Double] = [:]

    // Decode only.
    let decodeGraph = """
        queues:
          - {name: source, processor: mediasrc, parameters: {path: '\(input)', threads: 2}, threading: thread}
          - {name: sink, processor: nullsink, size: 4}
        connections: [source -> sink]
        """
    var ours: [Double] = [], theirs: [Double] = []
    for _ in 0..<runs {
        let run = try runMedia(decodeGraph, name: "decode.yaml")
        precondition(run.stats.delivered(sinks: ["sink"]) == Int(frames), "decoded \(run.stats.delivered(sinks: ["sink"])) frames")
        ours.append(run.seconds)
        if let t = try timed(ffmpeg, ["-v", "error", "-threads", "2", "-i", input, "-an", "-f", "null", "-"]) { theirs.append(t) }
    }
    figures["decode_fps"] = frames / median(ours)
    if !theirs.isEmpty { figures["ffmpeg_decode_fps"] = frames / median(theirs) }
    print(String(format: "  decode: QueueGraph %.0f fps, ffmpeg -threads 2 %.0f fps (ours/theirs %.3f)",
                 figures["decode_fps"]!, figures["ffmpeg_decode_fps"] ?? .nan, (figures["decode_fps"] ?? 0) / (figures["ffmpeg_decode_fps"] ?? .nan)))

    // Transcode 1080p → 720p.
    let output = NSTemporaryDirectory() + "qgbench-media-720p.mp4"
    defer { try? FileManager.default.removeItem(atPath: output) }
    let transcodeGraph = """
        queues:
          - {name: source, processor: mediasrc, parameters: {path: '\(input)'}, threading: thread}
          - {name: scale, processor: videoscale, parameters: {width: 1280, height: 720}, buffers: upstream, size: 4}
          - {name: encode, processor: mediasink, parameters: {path: '\(output)', preset: veryfast, crf: 23}, size: 4, threading: thread}
        connections: [source -> scale, scale -> encode]
        """
    ours = []
    theirs = []
    var gst: [Double] = []
    let gstLaunch = "/usr/bin/gst-launch-1.0"
    let gstUsable = try vsGStreamer && FileManager.default.isExecutableFile(atPath: gstLaunch)
        && (try runProcess("/usr/bin/gst-inspect-1.0", ["x264enc"])).status == 0
    if vsGStreamer && !gstUsable { print("  GStreamer's x264enc is missing (gstreamer1.0-plugins-ugly): skipping its transcode") }
    for _ in 0..<runs {
        let run = try runMedia(transcodeGraph, name: "transcode.yaml")
        ours.append(run.seconds)
        if let t = try timed(ffmpeg, ["-v", "error", "-y", "-i", input, "-an", "-vf", "scale=1280:720", "-c:v", "libx264",
                                      "-preset", "veryfast", "-crf", "23", output]) { theirs.append(t) }
        if gstUsable, let t = try timed(gstLaunch, ["-q", "filesrc", "location=\(input)", "!", "decodebin", "!", "videoconvert", "!",
                                                    "videoscale", "!", "video/x-raw,width=1280,height=720", "!", "x264enc",
                                                    "speed-preset=veryfast", "pass=qual", "quantizer=23", "!", "mp4mux", "!",
                                                    "filesink", "location=\(output)"]) { gst.append(t) }
    }
    figures["transcode_s"] = median(ours)
    if !theirs.isEmpty {
        figures["ffmpeg_transcode_s"] = median(theirs)
        figures["ratio_vs_ffmpeg"] = median(ours) / median(theirs)
    }
    if !gst.isEmpty {
        figures["gst_transcode_s"] = median(gst)
        figures["ratio_vs_gst"] = median(ours) / median(gst)
    }
    print(String(format: "  transcode 1080p → 720p (veryfast): QueueGraph %.2f s, ffmpeg %.2f s (×%.3f), GStreamer %.2f s (×%.3f)",
                 figures["transcode_s"]!, figures["ffmpeg_transcode_s"] ?? .nan, figures["ratio_vs_ffmpeg"] ?? .nan,
                 figures["gst_transcode_s"] ?? .nan, figures["ratio_vs_gst"] ?? .nan))

    // Mallocs per frame: decode → scale → sink, counted over the whole run.
    let scaled = """
        queues:
          - {name: source, processor: mediasrc, parameters: {path: '\(input)', threads: 2}, threading: thread}
          - {name: scale, processor: videoscale, parameters: {width: 1280, height: 720}, buffers: upstream, size: 4}
          - {name: sink, processor: nullsink, size: 4}
        connections: [source -> scale, scale -> sink]
        """
    MallocInterposerSwift.reset()
    MallocInterposerSwift.hook()
    _ = try runMedia(scaled, name: "mallocs.yaml")
    MallocInterposerSwift.unhook()
    figures["mallocs_per_frame"] = Double(MallocInterposerSwift.getStatistics().mallocCount) / frames
    print(String(format: "  decode → scale → sink: %.1f mallocs per frame (FFmpeg's own included)", figures["mallocs_per_frame"]!))

    // Live preview through the GL pass.
    let shader = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../../../Graphs/shaders/grade.frag").standardized.path
    let live = try runMedia("""
        queues:
          - {name: source, processor: mediasrc, parameters: {path: '\(input)', pace: live, latency: 0.3}, pool: {count: 16}, threading: thread}
          - {name: convert, processor: videoconvert, parameters: {format: rgba}, buffers: upstream, size: 4}
          - {name: gl, processor: glupload, parameters: {preview: false}, size: 2, threading: thread}
          - {name: grade, processor: glshader, parameters: {file: '\(shader)'}, size: 2}
          - {name: readback, processor: glreadback, size: 2, buffers: reuse}
          - {name: sink, processor: framesink, size: 2}
        connections: [source -> convert, convert -> gl, gl -> grade, grade -> readback, readback -> sink]
        """, name: "live.yaml")
    figures["live_misses"] = Double(live.stats.dropped(.late))
    print(String(format: "  live preview through the GL pass: %d frames shown, %d deadline misses, %.1f s",
                 live.stats.delivered(sinks: ["sink"]), live.stats.dropped(.late), live.seconds))
    printFigures(figures)
}
