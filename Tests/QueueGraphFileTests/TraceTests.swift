import Foundation
import QueueGraphCore
import Testing

/// Whether this machine can record a trace: the LTTng trait is on and the
/// LTTng tools and babeltrace2's Python bindings are installed (Tools/setup
/// installs them; `.ci/run` always has them).
private let canRecord: Bool = Tracing.isCompiledIn
    && FileManager.default.isExecutableFile(atPath: "/usr/bin/lttng")
    && FileManager.default.isExecutableFile(atPath: "/usr/bin/lttng-sessiond")
    && FileManager.default.fileExists(atPath: "/usr/lib/python3/dist-packages/bt2")

/// Runs a script of `Tools/` with the test's `qgraph` binary; returns its status and standard output.
private func tool(_ name: String, _ arguments: [String]) throws -> (status: Int32, out: Data) {
    let process = Process()
    process.executableURL = repositoryRoot.appendingPathComponent("Tools/\(name)")
    process.arguments = arguments
    process.currentDirectoryURL = repositoryRoot
    process.environment = ProcessInfo.processInfo.environment.merging(["QGRAPH": QGraphProcess.binary.path]) { $1 }
    let output = Pipe()
    process.standardOutput = output
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, data)
}

private func object(_ data: Data) throws -> [String: Any] {
    try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
}

@Suite("LTTng tracing", .serialized)
struct TraceTests {
    @Test("a recorded run's trace (flow counts, drops, feedback, final snapshots) gives the run's ledger, with no event discarded",
          .enabled(if: canRecord, "needs the LTTng trait, lttng-tools and python3-bt2"),
          arguments: ["Graphs/overload-red-vs-taildrop.yaml", "Graphs/ack-nak.yaml"])
    func traceMatchesLedger(file: String) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("qgraph-trace-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let recorded = try tool("trace-record", [directory.path, file, "--json"])
        #expect(recorded.status == 0)
        let run = try object(recorded.out)
        #expect(run["ledger_balanced"] as? Bool == true)
        let reported = try tool("trace-report", [directory.path, "--json"])
        #expect(reported.status == 0)
        let trace = try object(reported.out)
        #expect(trace["discarded_events"] as? Int == 0)
        let graphs = try #require(trace["graphs"] as? [[String: Any]])
        #expect(graphs.count == 1)
        let traced = try #require(graphs.first)

        let runQueues = try #require(run["queues"] as? [[String: Any]])
        let traceQueues = try #require(traced["queues"] as? [[String: Any]])
        #expect(runQueues.count == traceQueues.count)
        for (expected, seen) in zip(runQueues, traceQueues) {
            let name = expected["name"] as? String ?? "?"
            #expect(seen["name"] as? String == name)
            for key in ["thread", "arrived", "popped", "acks", "naks", "abandoned"] {
                #expect(seen[key] as? Int == expected[key] as? Int, "queue \(name): \(key)")
            }
            #expect(seen["dropped"] as? [String: Int] == expected["dropped"] as? [String: Int], "queue \(name): drops")
            // The final queue_stats snapshot carries the same counters.
            let last = try #require(seen["last_queue_stats"] as? [String: Int], "queue \(name): no queue_stats event")
            #expect(last["arrived"] == expected["arrived"] as? Int && last["popped"] == expected["popped"] as? Int)
            #expect(last["max_depth"] == expected["max_depth"] as? Int)
            #expect(last["residency_samples"] == expected["residency_samples"] as? Int)
            #expect(last["residency_max_ns"] == expected["residency_max_ns"] as? Int)
            #expect(last["bytes_queued"] == expected["bytes_queued"] as? Int && last["bytes_allocated"] == expected["bytes_allocated"] as? Int)
            // Every buffer popped was popped in a counted scheduler step.
            if expected["popped"] as? Int ?? 0 > 0 { #expect(seen["steps"] as? Int ?? 0 >= expected["popped"] as? Int ?? 0) }
        }
        let runPools = try #require(run["pools"] as? [[String: Any]])
        let tracePools = try #require(traced["pools"] as? [[String: Any]])
        #expect(runPools.count == tracePools.count)
        for (expected, seen) in zip(runPools, tracePools) {
            for key in ["name", "capacity"] { #expect(seen[key] as? AnyHashable == expected[key] as? AnyHashable) }
            for key in ["acquired", "consumed", "dropped", "abandoned", "in_use"] {
                #expect(seen[key] as? Int == expected[key] as? Int, "pool \(expected["name"] ?? "?"): \(key)")
            }
            // The final pool_stats snapshot carries the run's counters too.
            let last = try #require(seen["last_pool_stats"] as? [String: Int], "pool \(expected["name"] ?? "?"): no pool_stats event")
            for key in ["acquired", "in_use", "peak_in_use", "exhausted", "bytes_in_use", "bytes_allocated"] {
                #expect(last[key] == expected[key] as? Int, "pool_stats \(key)")
            }
        }
        // Both graphs exercise the rare events too: drops, or acks and naks.
        #expect(runQueues.contains { ($0["dropped"] as? [String: Int])?.isEmpty == false || ($0["acks"] as? Int ?? 0) > 0 })
    }

    @Test("the GL owner's events: one gl_frame per frame read back, one gl_request per request, gl_wake when it serves",
          .enabled(if: canRecord, "needs the LTTng trait, lttng-tools and python3-bt2"))
    func glEvents() throws {
        let (run, lines) = try record("Tests/QueueGraphFileTests/Traced/gl-small.yaml")
        let gl = try #require((run["gl"] as? [[String: Any]])?.first)
        func count(_ event: String) -> Int { lines.count { $0.contains("qgraph:\(event):") } }
        #expect(count("gl_frame") == gl["frames"] as? Int)
        #expect(count("gl_request") == gl["requests"] as? Int)
        #expect(gl["pending"] as? Int == 0)
        #expect(gl["frames"] as? Int ?? 0 > 0)
        #expect(count("gl_wake") > 0)
    }

    @Test("a compound queue's events: one lb_split per server per frame, with its part and its time",
          .enabled(if: canRecord, "needs the LTTng trait, lttng-tools and python3-bt2"))
    func loadBalanceEvents() throws {
        let (run, lines) = try record("Tests/QueueGraphFileTests/Traced/compound-small.yaml")
        let compound = try #require((run["compounds"] as? [[String: Any]])?.first)
        let frames = try #require(compound["frames"] as? Int)
        let splits = lines.filter { $0.contains("qgraph:lb_split:") }
        #expect(frames > 0 && splits.count == frames * 2)
        #expect(splits.filter { $0.contains("server = 0,") }.count == frames)
        #expect(splits.allSatisfy { $0.contains("x0 = ") && $0.contains("work_ns = ") })
    }

    @Test("a process queue's child records into the parent's session: each process's graph, told apart by its vpid",
          .enabled(if: canRecord, "needs the LTTng trait, lttng-tools and python3-bt2"))
    func childProcessEvents() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("qgraph-trace-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let recorded = try tool("trace-record", [directory.path, "Tests/QueueGraphFileTests/Traced/process-small.yaml", "--json"])
        #expect(recorded.status == 0)
        let reported = try tool("trace-report", [directory.path, "--json"])
        let trace = try object(reported.out)
        #expect(trace["discarded_events"] as? Int == 0)
        let graphs = try #require(trace["graphs"] as? [[String: Any]])
        let parent = try #require(graphs.first { $0["name"] as? String == "process-small" })
        let child = try #require(graphs.first { $0["name"] as? String == "process-small/effect" })
        #expect(parent["pid"] as? Int != child["pid"] as? Int)
        func queue(_ graph: [String: Any], _ name: String) -> [String: Any]? {
            (graph["queues"] as? [[String: Any]])?.first { $0["name"] as? String == name }
        }
        #expect(queue(parent, "effect")?["acks"] as? Int == 2000)   // the link, acking src
        #expect(queue(child, "effect")?["popped"] as? Int == 2000)  // the queue's processor, in the child
        #expect(queue(parent, "sink")?["popped"] as? Int == 2000)
    }

    /// Runs `file` under `Tools/trace-record --json`; the run's JSON and babeltrace2's lines.
    private func record(_ file: String) throws -> ([String: Any], [Substring]) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("qgraph-trace-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let recorded = try tool("trace-record", [directory.path, file, "--json"])
        #expect(recorded.status == 0)
        let babeltrace = Process()
        babeltrace.executableURL = URL(fileURLWithPath: "/usr/bin/babeltrace2")
        babeltrace.arguments = [directory.path]
        let output = Pipe()
        babeltrace.standardOutput = output
        try babeltrace.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        babeltrace.waitUntilExit()
        return (try object(recorded.out), text.split(separator: "\n"))
    }
}
