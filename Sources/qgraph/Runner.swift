import ArgumentParser
import Foundation
import QueueGraphControl
import QueueGraphCore
import QueueGraphFile
import QueueGraphGL
import QueueGraphMedia
import QueueGraphRender
import QueueGraphRuntime
import QueueGraphWeb
import Synchronization

/// Stop signals received (SIGINT, SIGTERM) and the last one's number; the
/// signal handler only records. The first drains the graph, a second abandons it.
let stopSignals = Atomic<Int>(0)
let lastStopSignal = Atomic<Int32>(0)

/// How a run ended, as `qgraph run` prints it.
private func signalName(_ number: Int32) -> String { number == SIGTERM ? "terminated (SIGTERM)" : "interrupted (SIGINT)" }

/// Runs a checked graph with a progress line and prints its final statistics.
struct Runner {
    let file: GraphFile
    let options: RunOptions

    func run() throws {
        let graph: QueueGraph
        do {
            graph = try file.config.createQueueGraph()
        } catch let errors as ConfigErrors {   // a link refused when the formats settled, a media file that does not open
            report(file.locate(errors))
            throw Exit.invalidGraph
        }
        do {
            // SIGTERM (a service manager's stop) drains like Ctrl-C.
            var set = sigset_t()
            sigemptyset(&set)
            for number in [SIGINT, SIGTERM] {
                signal(number) { number in
                    lastStopSignal.store(number, ordering: .relaxed)
                    stopSignals.add(1, ordering: .releasing)
                }
                sigaddset(&set, number)
            }
            // A parent may have left them blocked (some test runners and
            // launchers do); Ctrl-C must reach the handler.
            sigprocmask(SIG_UNBLOCK, &set, nil)
            try graph.start()
        } catch {
            printError("\(file.file): cannot start: \(error)")
            throw Exit.runtimeFailure
        }
        // A launch line's graph is "<launch>": its endpoint is "launch".
        let name = file.config.name.trimmingCharacters(in: CharacterSet(charactersIn: "<>"))
        let endpoint = options.noControl ? nil : ControlEndpoint(graph: graph, name: name, details: details) { line in
            try GraphFile.segment(launch: line, registry: processors)
        }
        do { try endpoint?.open() } catch { printError("no control endpoint: \(error)") }
        defer { endpoint?.close() }
        let page = options.serve.map { LivePage(graph: graph, name: name, host: options.serveAddress, port: $0) }
        do {
            try page?.start()
            if let page, let port = page.port { printError("live page: http://\(page.host):\(port)/") }
        } catch {
            printError("no live page: \(error)")
        }
        defer { page?.stop() }
        let start = monotonicNanoseconds()
        let progress = ProgressLine(enabled: !options.quiet)
        // Queues with no out pads: their pops are what the graph delivered.
        let sinks = file.config.sinkNames
        let glOwners = file.config.queues.compactMap { (graph.processor(ofQueue: $0.name) as? GLUpload)?.owner }
        let compounds = file.config.queues.compactMap { q in (graph.processor(ofQueue: q.name) as? CompoundNode).map { (q.name, $0) } }
        var ending = "end of stream"
        while !graph.waitUntilFinished(timeoutNanoseconds: 200_000_000) {
            let elapsed = Double(monotonicNanoseconds() - start) / 1e9
            if stopSignals.load(ordering: .acquiring) > 0 { ending = "\(signalName(lastStopSignal.load(ordering: .relaxed))), drained"; break }
            if glOwners.contains(where: { $0.statistics().windowClosed }) { ending = "preview window closed, drained"; break }
            if let duration = options.duration, elapsed >= duration { ending = "--duration \(duration) s, drained"; break }
            progress.show(graph.statistics(), elapsed: elapsed, sinks: sinks)
        }
        progress.clear()
        if graph.failure != nil { ending = "stopped by a failure, drained" }
        let stats = graph.stop(drain(graph, ending: &ending))
        let seconds = Double(monotonicNanoseconds() - start) / 1e9
        let problems = stats.ledgerProblems()
        let failed = stats.queues.filter { ($0.dropped[.failed] ?? 0) > 0 }
        if options.json {
            print(json(stats, graph: graph, gl: glOwners.map { $0.statistics() }, compounds: compounds.map { ($0.0, $0.1.statistics) },
                       ending: ending, seconds: seconds, problems: problems))
        } else {
            print("\(file.file): \(ending) after \(String(format: "%.2f", seconds)) s")
            if file.queues.contains(where: { $0.processor == "render" || $0.processor == "mediasrc" }) {
                print(frameSummary(stats, sinks: sinks, seconds: seconds, graph: graph))
            }
            for owner in glOwners { print(glSummary(owner.statistics())) }
            for (name, node) in compounds { print(compoundSummary(name, node.statistics)) }
            for link in stats.links { print(linkSummary(link)) }
            print(stats.table(), terminator: "")
            print(problems.isEmpty ? "ledger: balanced (every buffer delivered, dropped and counted, or released)"
                                   : "ledger: NOT balanced\n  " + problems.joined(separator: "\n  "))
        }
        if let failure = graph.failure {
            printError(failure)
            throw Exit.runtimeFailure
        }
        if !problems.isEmpty { throw Exit.runtimeFailure }
        if !failed.isEmpty {
            printError("processors failed on " + failed.map { q in
                let count = q.dropped[.failed]!
                let reason = (graph.processor(ofQueue: q.name) as? any FailureReporting)?.failureReason.map { "; first: \($0)" } ?? ""
                return "\(q.name) (\(count) buffer\(count == 1 ? "" : "s")\(reason))"
            }.joined(separator: ", "))
            throw Exit.runtimeFailure
        }
    }

    /// What the file says of each queue beyond its config, for the control endpoint's `dump`.
    private var details: [String: [String: Any]] {
        Dictionary(uniqueKeysWithValues: file.queues.map { q in
            (q.name, ["processor": q.processor, "parameters": q.parameters.values.mapValues(\.json)] as [String: Any])
        })
    }

    /// Drains the graph for up to `--drain-timeout`; a stop signal during
    /// the drain (the first, or one more after the one that began it)
    /// abandons what is left at once. Returns how `stop` should end.
    private func drain(_ graph: QueueGraph, ending: inout String) -> QueueGraph.StopMode {
        let signalsBefore = stopSignals.load(ordering: .acquiring)
        let deadline = monotonicNanoseconds() + UInt64(max(0, options.drainTimeout) * 1e9)
        graph.engine.beginDrain()
        while !graph.waitUntilFinished(timeoutNanoseconds: 50_000_000) && monotonicNanoseconds() < deadline {
            if stopSignals.load(ordering: .acquiring) > signalsBefore {
                ending = "\(signalName(lastStopSignal.load(ordering: .relaxed))) while draining, abandoned"
                return .abandon
            }
        }
        return .drain(timeoutNanoseconds: 0)
    }

    /// A `child` queue's child, or a `remote` queue's host, and what crossed to it.
    private func linkSummary(_ link: LinkStatistics) -> String {
        let (what, start) = link.host.map { ("remote '\(link.queue)' on \($0)", "session") } ?? ("child '\(link.queue)'", "start")
        return "\(what): \(link.starts) \(start)\(link.starts == 1 ? "" : "s")"
            + (link.pid != 0 ? " (pid \(link.pid) running)" : "") + "; buffers: \(link.zeroCopy) zero-copy, \(link.copied) copied, "
            + "\(link.returned) sent back, \(link.lost) lost"
            + (link.lastExit.map { link.host == nil ? "; last child \($0)" : "; last failure: \($0)" } ?? "")
    }

    /// Frames shown, frames per second and deadline misses of a render graph.
    /// A media sink counts its video frames (the audio chunks it also takes are not frames).
    private func frameSummary(_ stats: GraphStatistics, sinks: Set<String>, seconds: Double, graph: QueueGraph) -> String {
        let shown = sinks.map { sink in
            (graph.processor(ofQueue: sink) as? MediaSink)?.framesWritten ?? stats.delivered(sinks: [sink])
        }.reduce(0, +)
        let late = stats.queues.filter { ($0.dropped[.late] ?? 0) > 0 }
        return String(format: "frames: %d shown, %.1f fps, %d deadline misses", shown, Double(shown) / max(seconds, 1e-9), stats.dropped(.late))
            + (late.isEmpty ? "" : " (" + late.map { "\($0.name) \($0.dropped[.late]!)" }.joined(separator: ", ") + ")")
    }

    /// The GL owner's context, frame time and mailbox telemetry.
    private func glSummary(_ gl: GLOwnerStatistics) -> String {
        let m = gl.mailbox, total = m.total
        let mean = gl.frames == 0 ? 0 : Double(gl.frameDurationSum) / Double(gl.frames) / 1e6
        let max = Double(gl.frameDurationMax) / 1e6
        var lines = ["gl: \(gl.backend.rawValue) on \(gl.renderer)" + (gl.previewWindow ? " (preview window)" : " (headless)")
            + String(format: "; %d frames, GL time %.2f ms mean, %.2f ms max", gl.frames, mean, max)]
        var mailbox = "    mailbox: \(total.enqueued) requests, \(total.executed) run, \(total.coalesced) coalesced, "
        mailbox += "\(total.timedOut) timed out, \(total.dropped) dropped, max depth \(m.maxDepth)"
        lines.append(mailbox)
        lines.append("    presents \(gl.presented) shown, \(m.previewSkips) skipped; screenshots \(m.screenshotsWritten) written, "
            + "\(m.screenshotsFailed) failed; inputs \(m.inputsAccepted) accepted, \(m.inputsReplaced) replaced, \(m.inputsDropped) dropped")
        if m[.output].executed > 0 {
            lines.append(String(format: "    output requests: %d, latency %.2f ms mean, %.2f ms max", m[.output].executed,
                                Double(m[.output].latencySum) / Double(m[.output].executed) / 1e6, Double(m[.output].latencyMax) / 1e6))
        }
        if gl.wrongThreadCalls > 0 { lines.append("    \(gl.wrongThreadCalls) wrong-thread GL calls refused") }
        return lines.joined(separator: "\n")
    }

    /// A compound queue's servers: their mean time per frame, how far the
    /// frames were from the ideal, and the last split.
    private func compoundSummary(_ name: String, _ c: CompoundStatistics) -> String {
        let means = c.serverNanoseconds.map { String(format: "%.2f", Double($0) / Double(max(c.frames, 1)) / 1e6) }
        let split = c.recent.last?.parts.map(\.description).joined(separator: " | ") ?? "none"
        let ratio = String(format: "%.3f", c.medianOverIdeal)
        let failovers = c.failovers.contains { $0 > 0 }
            ? "\n    parts rendered here for a failed host, by server: \(c.failovers.map(String.init).joined(separator: " / ")); last: \(c.lastFailover ?? "")"
            : ""
        return "compound \(name): \(c.servers) servers, \(c.mode.rawValue); \(c.frames) frames; ms per frame by server: "
            + "\(means.joined(separator: " / ")); frame time / ideal \(ratio) (median)\n    last split: \(split)" + failovers
    }

    private func json(_ stats: GraphStatistics, graph: QueueGraph, gl: [GLOwnerStatistics], compounds: [(String, CompoundStatistics)],
                      ending: String, seconds: Double, problems: [String]) -> String {
        let compoundObjects: [[String: Any]] = compounds.map { name, c in
            let lastParts: [[Double]] = c.recent.last?.parts.map { [$0.x0, $0.y0, $0.x1, $0.y1] } ?? []
            return ["name": name, "servers": c.servers, "mode": c.mode.rawValue, "frames": c.frames,
                    "server_ns": c.serverNanoseconds, "median_over_ideal": c.medianOverIdeal, "last_parts": lastParts,
                    "failovers": c.failovers, "last_failover": c.lastFailover ?? NSNull()]
        }
        var object = stats.jsonObject
        object["compounds"] = compoundObjects
        object["gl"] = gl.map { g in [
            "backend": g.backend.rawValue, "renderer": g.renderer, "preview_window": g.previewWindow, "frames": g.frames,
            "frame_ns_sum": g.frameDurationSum, "frame_ns_max": g.frameDurationMax, "presented": g.presented,
            "requests": g.mailbox.total.enqueued, "executed": g.mailbox.total.executed, "coalesced": g.mailbox.total.coalesced,
            "timed_out": g.mailbox.total.timedOut, "dropped": g.mailbox.total.dropped, "pending": g.mailbox.total.pending,
            "max_depth": g.mailbox.maxDepth, "wrong_thread_calls": g.wrongThreadCalls,
        ] as [String: Any] }
        object["file"] = file.file
        object["ending"] = ending
        object["failure"] = graph.failure ?? NSNull()
        object["seconds"] = seconds
        object["ledger_balanced"] = problems.isEmpty
        object["ledger_problems"] = problems
        let data = try! JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self)
    }
}

/// A one-line progress report on standard error: rewritten in place on a
/// terminal, a plain line every 5 seconds otherwise (no control codes).
final class ProgressLine {
    private let enabled: Bool
    private let terminal = isatty(STDERR_FILENO) != 0
    private var lastPrinted = 0.0
    private var lastDelivered = 0
    private var lastTime = 0.0

    init(enabled: Bool) { self.enabled = enabled }

    func show(_ stats: GraphStatistics, elapsed: Double, sinks: Set<String>) {
        guard enabled, elapsed - lastPrinted >= (terminal ? 0.2 : 5) else { return }
        let delivered = stats.delivered(sinks: sinks)
        let dropped = stats.queues.map(\.totalDropped).reduce(0, +)
        let rate = Double(delivered - lastDelivered) / max(elapsed - lastTime, 1e-9)
        let line = String(format: "%7.1f s  %d buffers delivered (%.0f/s)  %d dropped", elapsed, delivered, rate, dropped)
        FileHandle.standardError.write(Data((terminal ? "\r\u{1B}[K" + line : line + "\n").utf8))
        (lastPrinted, lastDelivered, lastTime) = (elapsed, delivered, elapsed)
    }

    func clear() {
        if enabled && terminal && lastPrinted > 0 { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
    }
}
