import Foundation
@_spi(Runtime) import QueueGraphCore
import QueueGraphFile
import QueueGraphRemote
import QueueGraphRender
import QueueGraphRuntime
#if canImport(Glibc)
import Glibc
#endif

/// `qgbench remote`: buffers between two network namespaces over a veth pair
/// (this one, 10.90.1.1, and a host namespace, 10.90.1.2, whose worker is
/// this program as `remote-worker`), with `UCX_TLS=tcp`: throughput for
/// 1 MiB frames and 4 KiB buffers, against `ucx_perftest` (ucp_am_bw) and
/// GStreamer's TCP elements on the same path, and how soon a killed worker
/// and a cut link are noticed. Needs root (network namespaces).
func remoteBenchmark() throws {
    guard getuid() == 0 else {
        print("remote benchmark: needs root for network namespaces (ip netns); skipped")
        return
    }
    let net = try BenchNetwork()
    defer { net.tearDown() }
    setenv("UCX_TLS", "tcp", 1)
    let runs = 3
    print("remote benchmark: two namespaces over veth, UCX_TLS=tcp, median of \(runs) runs; \(ProcessInfo.processInfo.activeProcessorCount) cores")

    var worker = try net.startWorker()
    defer { net.stop(worker) }
    let frames = 3000, small = 200_000
    let frameRate = median(try (0..<runs).map { _ in try net.throughput(size: 1 << 20, count: frames) })
    print(String(format: "  QueueGraph 1 MiB frames:   %7.0f frames/s  (%5.2f GB/s)", frameRate, frameRate * Double(1 << 20) / 1e9))
    let smallRate = median(try (0..<runs).map { _ in try net.throughput(size: 4096, count: small) })
    print(String(format: "  QueueGraph 4 KiB buffers:  %7.0f buffers/s (%5.2f GB/s)", smallRate, smallRate * 4096 / 1e9))
    var figures: [String: Double] = [
        "mib_frames_per_s": frameRate, "mib_gb_per_s": frameRate * Double(1 << 20) / 1e9,
        "small_buffers_per_s": smallRate, "small_gb_per_s": smallRate * 4096 / 1e9,
    ]

    let latencies = try net.latency(rate: 2000, count: 4000)
    print(String(format: "  a 4 KiB buffer there and back (2000/s, an identity on the host): median %.0f µs, 99th percentile %.0f µs",
                 percentile(latencies, 0.5), percentile(latencies, 0.99)))
    figures["round_trip_us"] = percentile(latencies, 0.5)
    figures["round_trip_p99_us"] = percentile(latencies, 0.99)

    if let perftest = net.perftest(size: 1 << 20, count: 2000) {
        let smallPerftest = net.perftest(size: 4096, count: 200_000)
        print(String(format: "  ucx_perftest ucp_am_bw 1 MiB: %7.0f msgs/s; 4 KiB: %7.0f msgs/s", perftest, smallPerftest ?? 0))
        figures["ucx_perftest_mib_per_s"] = perftest
        figures["ratio_vs_ucx"] = frameRate / perftest
        if let smallPerftest { figures["ratio_vs_ucx_small"] = smallRate / smallPerftest }
        print(String(format: "  ratio to ucx_perftest: 1 MiB %.2f, 4 KiB %.2f", frameRate / perftest, smallRate / (smallPerftest ?? .nan)))
    } else {
        print("  ucx_perftest: not installed or failed (apt-get install ucx-utils); no ratio")
    }
    if let gst = net.gstreamer(size: 1 << 20, count: frames) {
        print(String(format: "  GStreamer tcpclientsink → tcpserversrc 1 MiB: %7.0f buffers/s; QueueGraph ×%.2f", gst, frameRate / gst))
        figures["gst_mib_per_s"] = gst
        figures["ratio_vs_gst"] = frameRate / gst
    } else {
        print("  GStreamer: gst-launch-1.0 missing or failed (apt-get install gstreamer1.0-tools gstreamer1.0-plugins-base); no ratio")
    }

    let local = median(try (0..<runs).map { _ in try net.balanced(remote: false) })
    let remote = median(try (0..<runs).map { _ in try net.balanced(remote: true) })
    print(String(format: "  Graphs/balanced-fractal.yaml (120 frames), frame time over ideal after 5 frames: %.3f with server 1 on the host (%.3f on one machine)", remote, local))
    figures["remote_balanced_over_ideal"] = remote
    figures["local_balanced_over_ideal"] = local

    var detections: [Double] = []
    for _ in 0..<runs {
        detections.append(try net.detection { net.stop(worker) })
        worker = try net.startWorker()
    }
    var cuts: [Double] = []
    for _ in 0..<runs {
        cuts.append(try net.detection { net.cut(down: true) })
        net.cut(down: false)
    }
    print(String(format: "  a killed worker noticed after %.1f ms, a cut link after %.1f ms (medians; each %@ / %@)",
                 median(detections), median(cuts), detections.map { String(format: "%.0f", $0) }.joined(separator: " "),
                 cuts.map { String(format: "%.0f", $0) }.joined(separator: " ")))
    figures["detect_ms"] = median(detections)
    figures["cut_detect_ms"] = median(cuts)
    printFigures(figures)
}

/// The worker `remote` starts in the host namespace: remote-worker ADDRESS PORT KEYFILE.
func remoteWorker(_ words: [String]) throws {
    guard words.count == 4, let port = Int(words[2]) else {
        print("usage: qgbench remote-worker ADDRESS PORT KEYFILE")
        exit(2)
    }
    var set = sigset_t()
    sigemptyset(&set)
    sigaddset(&set, SIGTERM)
    sigprocmask(SIG_BLOCK, &set, nil)
    let worker = try RemoteWorker(address: words[1], port: port, key: try SharedKey(file: words[3]), log: { line in
        FileHandle.standardError.write(Data("worker: \(line)\n".utf8))
    }, makeConfig: { text, path in try GraphFile(yaml: text, file: path, registry: remoteRegistry).config })
    var number: Int32 = 0
    sigwait(&set, &number)
    worker.stop()
}

/// A host namespace joined to this one by a veth pair.
final class BenchNetwork {
    let namespace = "qgb\(getpid())"
    let link = "qgb\(getpid())c"
    let here = "10.90.1.1", there = "10.90.1.2", port = 7790
    let directory: URL
    let key: URL

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("qgbench-remote-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        key = directory.appendingPathComponent("key")
        try Data("a key for the remote benchmark".utf8).write(to: key)
        try shell("""
            ip netns add \(namespace) && ip link add \(link) type veth peer name eth1 netns \(namespace) \
            && ip addr add \(here)/24 dev \(link) && ip link set \(link) up \
            && ip -n \(namespace) addr add \(there)/24 dev eth1 && ip -n \(namespace) link set eth1 up && ip -n \(namespace) link set lo up
            """)
    }

    func tearDown() {
        _ = try? shell("ip netns del \(namespace); ip link del \(link) 2>/dev/null; true")
        try? FileManager.default.removeItem(at: directory)
    }

    /// Runs `arguments` in the host namespace (without the malloc counter), not waiting.
    func inNamespace(_ arguments: [String], log: String? = nil) throws -> Process {
        let process = childProcess("/usr/sbin/ip", ["netns", "exec", namespace, "env", "UCX_TLS=tcp"] + arguments)
        process.standardOutput = FileHandle.nullDevice
        if let log {
            _ = FileManager.default.createFile(atPath: log, contents: nil)
            process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        } else {
            process.standardError = FileHandle.nullDevice
        }
        try process.run()
        return process
    }

    func startWorker() throws -> Process {
        let log = directory.appendingPathComponent("worker.log").path
        let process = try inNamespace([CommandLine.arguments[0], "remote-worker", there, String(port), key.path], log: log)
        for _ in 0..<1000 {
            if ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("listening") { return process }
            usleep(10_000)
        }
        throw ProcessorError("the worker did not listen within 10 s")
    }

    func stop(_ process: Process) {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    func cut(down: Bool) { _ = try? shell("ip link set \(link) \(down ? "down" : "up")") }

    /// A graph file of this network's host, loaded with the transport.
    func graph(_ queues: String) throws -> QueueGraphConfig {
        let text = "hosts:\n  - {name: h1, address: \(there), port: \(port)}\n" + queues
        let path = directory.appendingPathComponent("graph.yaml").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        var config = try GraphFile(yaml: text, file: path, registry: remoteRegistry).config
        config.remoteLinks = RemoteHosts(key: try SharedKey(file: key.path), file: (text, path))
        return config
    }

    /// Buffers per second from a source here to a sink on the host.
    func throughput(size: Int, count: Int) throws -> Double {
        let graph = try graph("""
            queues:
              - {name: src, processor: testsrc, parameters: {size: \(size), count: \(count), pattern: zeros}, pool: {count: 64}}
              - {name: far, processor: nullsink, threading: remote, host: h1, size: 32}
            connections: [src -> far]

            """).createQueueGraph()
        let start = monotonicNanoseconds()
        try graph.start()
        graph.waitUntilFinished()
        let elapsed = monotonicNanoseconds() - start
        let stats = graph.stop()
        precondition(stats.ledgerProblems().isEmpty && graph.failure == nil, "remote run: \(graph.failure ?? "") \(stats.ledgerProblems())")
        precondition(stats.queues.first { $0.name == "far" }?.popped == count, "not every buffer arrived")
        return Double(count) / (Double(elapsed) / 1e9)
    }

    /// Microseconds from each buffer's due time at a paced source here,
    /// through an identity on the host, to a sink here.
    func latency(rate: Int, count: Int) throws -> [Double] {
        latencySamples.withLock { $0.removeAll(keepingCapacity: true) }
        let graph = try graph("""
            queues:
              - {name: src, processor: testsrc, parameters: {size: 4096, count: \(count), rate: \(rate), pattern: zeros}, pool: {count: 64}}
              - {name: far, processor: identity, threading: remote, host: h1, size: 32}
              - {name: back, processor: latencysink, threading: thread}
            connections: [src -> far, far -> back]

            """).createQueueGraph()
        try graph.start()
        graph.waitUntilFinished()
        let stats = graph.stop()
        precondition(stats.ledgerProblems().isEmpty && graph.failure == nil, "remote run: \(graph.failure ?? "") \(stats.ledgerProblems())")
        let samples = latencySamples.withLock { $0 }
        precondition(samples.count == count, "\(samples.count) of \(count) buffers came back")
        return samples
    }

    /// ucx_perftest's ucp_am_bw messages per second, server on the host, client here.
    func perftest(size: Int, count: Int) -> Double? {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/ucx_perftest"),
              let server = try? inNamespace(["UCX_NET_DEVICES=eth1", "/usr/bin/ucx_perftest", "-p", "13390"]) else { return nil }
        defer { stop(server) }
        usleep(500_000)
        // Each side on its end of the veth, as QueueGraph routes itself (UCX would offer every interface).
        guard let result = try? runProcess("/usr/bin/env", ["UCX_TLS=tcp", "UCX_NET_DEVICES=\(link)", "/usr/bin/ucx_perftest", there, "-p", "13390", "-t", "ucp_am_bw",
                                                             "-s", String(size), "-n", String(count)]),
              let final = result.output.split(separator: "\n").last(where: { $0.hasPrefix("Final:") }) else { return nil }
        let words = final.split(separator: " ")
        return words.count >= 9 ? Double(words[8]) : nil   // message rate, overall
    }

    /// GStreamer's TCP elements on the same path: buffers per second.
    func gstreamer(size: Int, count: Int) -> Double? {
        let gst = "/usr/bin/gst-launch-1.0"
        guard FileManager.default.isExecutableFile(atPath: gst),
              let receiver = try? inNamespace([gst, "-q", "tcpserversrc", "host=\(there)", "port=7791", "!", "fakesink", "sync=false"]) else { return nil }
        usleep(700_000)
        let start = monotonicNanoseconds()
        guard let sent = try? runProcess(gst, ["-q", "fakesrc", "num-buffers=\(count)", "sizetype=fixed", "sizemax=\(size)", "filltype=zero",
                                                "!", "tcpclientsink", "host=\(there)", "port=7791", "sync=false"]), sent.status == 0 else {
            stop(receiver)
            return nil
        }
        receiver.waitUntilExit()   // tcpserversrc ends its stream when the sender closes
        return Double(count) / (Double(monotonicNanoseconds() - start) / 1e9)
    }

    /// Graphs/balanced-fractal.yaml for 120 frames, its compound queue's
    /// server 1 on the host when `remote`: the median over the frames after
    /// the 5th of the frame time over the ideal one (the servers' time shared evenly).
    func balanced(remote: Bool) throws -> Double {
        let original = try String(contentsOfFile: "../../Graphs/balanced-fractal.yaml", encoding: .utf8)   // Tools/bench runs in Tools/Benchmarks
        var text = original.replacingOccurrences(of: "frames: 300", with: "frames: 120")
            .replacingOccurrences(of: "/tmp/qgraph-balanced-fractal.y4m", with: directory.appendingPathComponent("balanced.y4m").path)
        if remote { text = text.replacingOccurrences(of: "    servers: 2\n", with: "    servers: 2\n    server-hosts: [local, h1]\n") }
        precondition(!remote || text.contains("server-hosts"), "Graphs/balanced-fractal.yaml has no 'servers: 2' line")
        let graph = try graph(text).createQueueGraph()
        try graph.start()
        graph.waitUntilFinished()
        let compound = (graph.processor(ofQueue: "julia") as! CompoundNode).statistics
        _ = graph.stop()
        let ratios = compound.recent.dropFirst(5).map(\.overIdeal)
        precondition(!ratios.isEmpty, "no frames")
        return median(ratios)
    }

    /// Milliseconds from `fault` to the link noticing it.
    func detection(_ fault: () -> Void) throws -> Double {
        let graph = try graph("""
            queues:
              - {name: src, processor: testsrc, parameters: {size: 4096, rate: 2000}, pool: {count: 32}}
              - {name: far, processor: nullsink, threading: remote, host: h1, size: 8}
            connections: [src -> far]

            """).createQueueGraph()
        try graph.start()
        usleep(300_000)
        let at = monotonicNanoseconds()
        fault()
        graph.waitUntilFinished()
        let stats = graph.stop()
        guard let noticed = stats.links.first?.lastDeathDetectedAt else { throw ProcessorError("the fault was not noticed") }
        return Double(noticed - at) / 1e6
    }
}

/// Every processor, and `latencysink` for the round trip (the worker, this
/// program too, reads the same graph files).
let remoteRegistry: ProcessorRegistry = {
    var registry = everyProcessor
    registry.register(ProcessorSpec(name: "latencysink", summary: "keeps each buffer's microseconds since its due time", outputs: 0...0,
                                    make: { _ in LatencySink() }))
    return registry
}()

/// What `latencysink` measured in this run.
let latencySamples = Locked<[Double]>([])

/// Keeps how long each buffer took since its paced source's due time (`timestamp`).
final class LatencySink: BufferProcessor, @unchecked Sendable {
    func process(_ buffer: Buffer, context: ProcessContext) -> ProcessResult {
        let microseconds = Double(context.now &- buffer.timestamp) / 1000
        latencySamples.withLock { $0.append(microseconds) }
        context.doneBuffer(buffer)
        return .ok
    }
}
