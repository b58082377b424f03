// `qgbench child`: buffers from a shared pool in the parent to a sink in a
// child process (`threading: child`), 1 MiB frames and 4 KiB buffers.
// The source stamps the first and last 8 bytes of each payload with the
// buffer's sequence number; the child's sink checks both (a mismatch fails
// the buffer, which the run then reports).
//
// The headline figures do the work a real pipeline does, on both sides
// alike: the source writes every byte of each buffer once, and the sink
// reads every byte once (a sum). GStreamer's pair does the same: `fakesrc
// filltype=zero` fills each buffer, and an appsink application
// (Tools/Benchmarks/gst-readsink.c) maps and sums each one. The second
// figure passes handles only (nothing touches the bytes but the stamps):
// the cost of the boundary itself.
import Foundation
import QueueGraphCore
import QueueGraphRuntime

/// Sends `count` stamped buffers of `size` bytes as fast as the graph takes
/// them; with `fill`, writes every byte of each first.
final class StampingSource: BufferSource, @unchecked Sendable {
    let count: Int
    let size: Int
    let fill: Bool
    var sent = 0
    init(count: Int, size: Int, fill: Bool) { (self.count, self.size, self.fill) = (count, size, fill) }

    func produce(context: ProcessContext) -> ProduceResult {
        guard sent < count else { return .endOfStream }
        guard let buffer = context.acquireBuffer(size: size) else { return .waitingForBuffer }
        let stamp = UInt64(sent)
        buffer.sequence = stamp
        let bytes = buffer.bytes
        if fill { memset(bytes.baseAddress!, Int32(truncatingIfNeeded: stamp), size) }
        bytes.storeBytes(of: stamp, toByteOffset: 0, as: UInt64.self)
        bytes.storeBytes(of: stamp, toByteOffset: size - 8, as: UInt64.self)
        if context.sendTo(0, buffer) == .full { context.doneBuffer(buffer); return .produced }
        sent += 1
        return .produced
    }
}

/// Checks each buffer's stamps (in the child): a mismatch fails the buffer.
/// With `readAll` it also reads every byte in place (a sum), as a consumer
/// that uses the whole frame would.
final class StampCheckingSink: BufferProcessor {
    let readAll: Bool
    var sum: UInt64 = 0
    init(readAll: Bool) { self.readAll = readAll }

    func process(_ buffer: Buffer, context: ProcessContext) -> ProcessResult {
        let bytes = buffer.bytes
        if readAll {
            for word in UnsafeRawBufferPointer(bytes).bindMemory(to: UInt64.self) { sum &+= word }
        }
        guard bytes.count >= 8,
              bytes.load(fromByteOffset: 0, as: UInt64.self) == buffer.sequence,
              bytes.load(fromByteOffset: bytes.count - 8, as: UInt64.self) == buffer.sequence else { return .failed }
        context.doneBuffer(buffer)
        return .ok
    }
}

/// src (shared pool, parent) ─▶ sink (`threading: child`, child). The
/// child is this program again: `qgbench child-part SIZE COUNT` rebuilds
/// the same config. `touchAll`: the source writes every byte and the sink reads every byte.
func childConfig(size: Int, count: Int, touchAll: Bool = false, restart: ChildOptions.Restart = .never) -> QueueGraphConfig {
    let depth = 64
    return QueueGraphConfig(residencySampleInterval: 1024, name: "child-bench")
        .adding(QueueConfig(name: "src", buffers: .provider, processor: { _ in StampingSource(count: count, size: size, fill: touchAll) },
                            creator: { _ in BufferPool(name: "frames", count: 2 * depth + 16, payloadCapacity: size, shared: true) }))
        .adding(QueueConfig(name: "sink", size: depth, threading: .child, outPads: 0,
                            child: ChildOptions(arguments: ["child-part", "\(size)", "\(count)", touchAll ? "read-all" : "stamps"],
                                                    restart: restart),
                            processor: { _ in StampCheckingSink(readAll: touchAll) }))
        .connecting("src", to: "sink")
}

/// Buffers per second through the boundary for one run.
func childRun(size: Int, count: Int, touchAll: Bool) throws -> Double {
    let graph = try childConfig(size: size, count: count, touchAll: touchAll).createQueueGraph()
    try graph.start()   // spawns the child and waits until it is ready: not part of the stream's time
    let start = monotonicNanoseconds()
    graph.waitUntilFinished()
    let elapsed = monotonicNanoseconds() - start
    let stats = graph.stop()
    guard stats.ledgerProblems().isEmpty, graph.failure == nil else {
        throw BenchError("ledger: \(stats.ledgerProblems()), failure: \(graph.failure ?? "none")")
    }
    let sink = stats[queue: "sink"]
    guard sink?.processed == count, stats.links.first?.zeroCopy == count else {
        throw BenchError("the child processed \(sink?.processed ?? 0) of \(count) (failed stamps: \(sink?.dropped[.failed] ?? 0)), zero-copy \(stats.links.first?.zeroCopy ?? 0)")
    }
    return Double(count) / (Double(elapsed) / 1e9)
}

/// Milliseconds from a SIGKILL of the child to the parent noticing it.
func crashDetection() throws -> Double {
    let graph = try childConfig(size: 4096, count: Int.max / 2, restart: .always).createQueueGraph()
    try graph.start()
    defer { graph.stop(.abandon) }
    while (graph.statistics()[queue: "sink"]?.processed ?? 0) < 10_000 { usleep(1000) }
    let pid = graph.statistics().links[0].pid
    let killedAt = monotonicNanoseconds()
    kill(pid, SIGKILL)
    while graph.statistics().links[0].lastDeathDetectedAt == nil { usleep(100) }
    return Double(graph.statistics().links[0].lastDeathDetectedAt! - killedAt) / 1e6
}

/// Builds Tools/Benchmarks/gst-readsink.c (an appsink that sums every byte)
/// into a temporary directory; nil when the GStreamer development files are missing.
func buildReadSink() -> String? {
    let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../gst-readsink.c").standardized.path
    let binary = FileManager.default.temporaryDirectory.appendingPathComponent("qgbench-gst-readsink-\(getpid())").path
    guard (try? shell("cc -O2 -o \(binary) \(source) $(pkg-config --cflags --libs gstreamer-app-1.0) 2>/dev/null")) != nil else { return nil }
    return binary
}

/// GStreamer's shared-memory pair: `fakesrc ! shmsink` in one process and,
/// in another, `shmsrc ! fakesink` (handles only) or, with `readSink`, the
/// appsink application that reads every byte (and then the source fills
/// every byte: `filltype=zero`). `count` buffers of `size` bytes; buffers
/// per second from the receiver's wall time, less that of a tenth-size run
/// (start-up). shmsink's area holds 128 buffers at most: with more, 1.22's
/// control socket fills up and both sides deadlock (shmsink sends while
/// holding the lock its acknowledgement reader needs).
func gstreamerShm(size: Int, count: Int, readSink: String?) -> Double? {
    guard let gst = ["/usr/bin/gst-launch-1.0", "/usr/local/bin/gst-launch-1.0"].first(where: FileManager.default.isExecutableFile),
          let inspect = try? runProcess("/usr/bin/gst-inspect-1.0", ["shmsink"]), inspect.status == 0 else { return nil }
    func run(_ n: Int) -> UInt64? {
        let socket = "/tmp/qgbench-shm-\(getpid())"
        unlink(socket)
        func quiet(_ process: Process) -> Process {
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            return process
        }
        let fill = readSink == nil ? "filltype=nothing" : "filltype=zero"
        let sender = quiet(childProcess(gst, ["-q", "fakesrc", "num-buffers=\(n)", "sizetype=fixed", "sizemax=\(size)", fill, "!", "shmsink",
                                             "socket-path=\(socket)", "shm-size=\(min(128 * size, 8 << 20))", "wait-for-connection=true", "sync=false"]))
        let receiver = quiet(readSink.map { childProcess($0, [socket, "\(n)"]) }
            ?? childProcess(gst, ["-q", "shmsrc", "socket-path=\(socket)", "num-buffers=\(n)", "!", "fakesink", "sync=false"]))
        guard (try? sender.run()) != nil else { return nil }
        defer {
            if sender.isRunning { sender.terminate() }
            sender.waitUntilExit()   // its exit status is a 1.22 shutdown race (errno 16), not the transfer's
            unlink(socket)
        }
        while !FileManager.default.fileExists(atPath: socket) && sender.isRunning { usleep(1000) }
        let start = monotonicNanoseconds()
        guard (try? receiver.run()) != nil else { return nil }
        receiver.waitUntilExit()
        return receiver.terminationStatus == 0 ? monotonicNanoseconds() - start : nil
    }
    guard let short = run(count / 10), let long = run(count) else { return nil }
    return Double(count - count / 10) / (Double(long > short ? long - short : 1) / 1e9)
}

func childBenchmark(vsGStreamer: Bool) throws {
    let runs = 3
    let (frames, small) = (60_000, 2_000_000)
    print("process benchmark: a shared pool in the parent, a stamp-checking sink in a child process (threading: child);")
    print("  1 MiB frames and 4 KiB buffers, median of \(runs) runs; \(ProcessInfo.processInfo.activeProcessorCount) cores")
    _ = try childRun(size: 4096, count: small / 10, touchAll: false)   // warm-up
    print("  every byte written by the source and read by the sink (the headline):")
    let mib = median(try (0..<runs).map { _ in try childRun(size: 1 << 20, count: frames / 10, touchAll: true) })
    print(String(format: "    1 MiB frames:  %9.0f frames/s (%.1f GiB/s written and read)", mib, mib / 1024))
    let kib = median(try (0..<runs).map { _ in try childRun(size: 4096, count: small / 2, touchAll: true) })
    print(String(format: "    4 KiB buffers: %9.0f buffers/s (%.0f ns per buffer)", kib, 1e9 / kib))
    print("  handles only (only the stamps are touched: the boundary's own cost):")
    let mibHandles = median(try (0..<runs).map { _ in try childRun(size: 1 << 20, count: frames, touchAll: false) })
    print(String(format: "    1 MiB frames:  %9.0f frames/s", mibHandles))
    let kibHandles = median(try (0..<runs).map { _ in try childRun(size: 4096, count: small, touchAll: false) })
    print(String(format: "    4 KiB buffers: %9.0f buffers/s (%.0f ns per buffer)", kibHandles, 1e9 / kibHandles))
    let detections = try (0..<5).map { _ in try crashDetection() }
    print(String(format: "  SIGKILL of the child noticed after %@ ms (5 kills)", detections.map { String(format: "%.1f", $0) }.joined(separator: ", ")))
    var figures: [String: Double] = ["mib_frames_per_s": mib, "small_buffers_per_s": kib,
                                     "mib_frames_per_s_handles": mibHandles, "small_buffers_per_s_handles": kibHandles,
                                     "crash_detect_ms_median": median(detections), "crash_detect_ms_max": detections.max()!]
    if vsGStreamer {
        let readSink = buildReadSink()
        if readSink == nil { print("  --vs-gstreamer: cannot build gst-readsink.c (apt-get install libgstreamer-plugins-base1.0-dev); the read-all pair is skipped") }
        defer { if let readSink { unlink(readSink) } }
        if let gMiB = gstreamerShm(size: 1 << 20, count: 20_000, readSink: nil), let gKiB = gstreamerShm(size: 4096, count: 200_000, readSink: nil) {
            print(String(format: "  GStreamer fakesrc ! shmsink | shmsrc ! fakesink, handles only: %.0f 1-MiB frames/s, %.0f 4-KiB buffers/s", gMiB, gKiB))
            print(String(format: "    ratio QueueGraph / GStreamer, handles only: %.1f× (1 MiB), %.1f× (4 KiB)", mibHandles / gMiB, kibHandles / gKiB))
            figures["gst_mib_frames_per_s_handles"] = gMiB
            figures["gst_small_buffers_per_s_handles"] = gKiB
            figures["ratio_vs_gst_mib_handles"] = mibHandles / gMiB
            figures["ratio_vs_gst_small_handles"] = kibHandles / gKiB
        } else {
            print("  --vs-gstreamer: gst-launch-1.0 or shmsink missing (apt-get install gstreamer1.0-tools gstreamer1.0-plugins-bad); skipped")
        }
        if let readSink, let gMiB = gstreamerShm(size: 1 << 20, count: 5_000, readSink: readSink),
           let gKiB = gstreamerShm(size: 4096, count: 200_000, readSink: readSink) {
            print(String(format: "  GStreamer fakesrc filltype=zero ! shmsink | shmsrc ! appsink summing every byte: %.0f 1-MiB frames/s, %.0f 4-KiB buffers/s", gMiB, gKiB))
            print(String(format: "    ratio QueueGraph / GStreamer, every byte written and read: %.2f× (1 MiB), %.2f× (4 KiB)", mib / gMiB, kib / gKiB))
            figures["gst_mib_frames_per_s"] = gMiB
            figures["gst_small_buffers_per_s"] = gKiB
            figures["ratio_vs_gst_mib"] = mib / gMiB
            figures["ratio_vs_gst_small"] = kib / gKiB
        }
    }
    printFigures(figures)
}
