import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Runs the built `qgraph` binary, as swift-argument-parser's own example tests do.
struct QGraphProcess {
    static var binary: URL {
        // swift test puts the test bundle and the package's executables side by side.
        let candidates = [Bundle.main.bundleURL.deletingLastPathComponent(), Bundle.main.bundleURL,
                          URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()]
        return candidates.map { $0.appendingPathComponent("qgraph") }
            .first { FileManager.default.isExecutableFile(atPath: $0.path) } ?? candidates[0].appendingPathComponent("qgraph")
    }

    let process = Process()
    let output = Pipe()
    let errors = Pipe()

    init(_ arguments: [String]) throws {
        process.executableURL = Self.binary
        process.arguments = arguments
        process.currentDirectoryURL = repositoryRoot
        process.standardOutput = output
        process.standardError = errors
        try process.run()
    }

    /// Waits for the exit; returns status, standard output and standard error.
    func finish() -> (status: Int32, out: String, err: String) {
        let out = output.fileHandleForReading.readDataToEndOfFile()
        let err = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self))
    }

    /// Stops a process that runs until stopped: SIGTERM (it drains), then
    /// SIGKILL if it has not exited within five seconds.
    func stop() -> (status: Int32, out: String, err: String) {
        kill(process.processIdentifier, SIGTERM)
        for _ in 0..<500 where process.isRunning { usleep(10_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        return finish()
    }

    static func run(_ arguments: String...) throws -> (status: Int32, out: String, err: String) {
        try QGraphProcess(arguments).finish()
    }
}

@Suite("qgraph command", .serialized)
struct CLITests {
    @Test("validate: an unknown management value names its line and the allowed values; exit 65")
    func validateUnknownManagement() throws {
        let result = try QGraphProcess.run("validate", "Tests/QueueGraphFileTests/Malformed/unknown-management.yaml")
        #expect(result.status == 65)
        #expect(result.err.contains("unknown-management.yaml:7:17: error: found 'tail-drop'"))
        #expect(result.err.contains("expected one of default, taildrop, headdrop or red"))
    }

    @Test("validate: several files, every error listed, good files say ok")
    func validateSeveral() throws {
        let result = try QGraphProcess.run("validate", "Graphs/live.yaml", "Tests/QueueGraphFileTests/Malformed/several-errors.yaml")
        #expect(result.status == 65)
        #expect(result.out.contains("Graphs/live.yaml: ok (2 queues, 1 connection)"))
        #expect(result.err.contains("3 errors"))
        let good = try QGraphProcess.run("validate", "Graphs/live.yaml", "Graphs/priority.yaml")
        #expect(good.status == 0)
    }

    @Test("run: the overload demo's drop counts are non-zero and balance the ledger")
    func runOverload() throws {
        let result = try QGraphProcess.run("run", "Graphs/overload-red-vs-taildrop.yaml", "--json")
        #expect(result.status == 0, "\(result.err)")
        let json = try JSONSerialization.jsonObject(with: Data(result.out.utf8)) as! [String: Any]
        #expect(json["ledger_balanced"] as? Bool == true)
        let queues = json["queues"] as! [[String: Any]]
        func queue(_ name: String) -> [String: Any] { queues.first { $0["name"] as? String == name }! }
        let red = (queue("red-branch")["dropped"] as! [String: Int])["red"] ?? 0
        let tail = (queue("taildrop-branch")["dropped"] as! [String: Int])["taildrop"] ?? 0
        #expect(red > 0 && tail > 0)
        for q in queues {
            let dropped = (q["dropped"] as! [String: Int]).values.reduce(0, +)
            #expect(q["arrived"] as! Int == (q["popped"] as! Int) + dropped + (q["abandoned"] as! Int) + (q["depth"] as! Int))
        }
        // The pool saw every dropped buffer come back (shared by the tee, a buffer is dropped when its last holder drops it).
        let pool = (json["pools"] as! [[String: Any]])[0]
        #expect(pool["acquired"] as! Int == (pool["consumed"] as! Int) + (pool["dropped"] as! Int))

        let table = try QGraphProcess.run("run", "Graphs/overload-red-vs-taildrop.yaml", "--quiet")
        #expect(table.status == 0)
        #expect(table.out.contains(" red ") && table.out.contains(" taildrop "))
        #expect(table.out.contains("ledger: balanced"))
    }

    @Test("run: SIGINT and SIGTERM (a service manager's stop) drain: exit 0, the table, the ledger balanced",
          arguments: [(SIGINT, "interrupted (SIGINT), drained"), (SIGTERM, "terminated (SIGTERM), drained")])
    func stopSignal(signal: Int32, ending: String) async throws {
        let running = try QGraphProcess(["run", "Graphs/live.yaml"])
        try await Task.sleep(for: .milliseconds(1500))
        kill(running.process.processIdentifier, signal)
        let result = running.finish()
        #expect(result.status == 0, "\(result.err)")
        #expect(result.out.contains(ending))
        #expect(result.out.contains("queue "))
        #expect(result.out.contains("ledger: balanced"))
    }

    @Test("ls, dump and top see a running graph: top in batch mode for scripts, and live in a terminal (tmux), where q quits")
    func controlTools() async throws {
        // Runs until stopped: 1000 buffers/s into a 500/s stage behind a headdrop queue.
        let running = try QGraphProcess(["launch", "testsrc rate=1000 ! queue size=8 management=headdrop ! delay us=2000", "--quiet"])
        defer { _ = running.stop() }
        let pid = "\(running.process.processIdentifier)"
        var listed = ""
        for _ in 0..<300 where !listed.contains(pid) {
            try await Task.sleep(for: .milliseconds(100))
            listed = try QGraphProcess.run("ls").out
        }
        #expect(listed.contains("launch") && listed.contains(pid), "\(listed)")

        let dump = try QGraphProcess.run("dump", pid)
        let object = try JSONSerialization.jsonObject(with: Data(dump.out.utf8)) as? [String: Any]
        let queues = object?["queues"] as? [[String: Any]] ?? []
        #expect(queues.map { $0["name"] as? String } == ["testsrc", "delay"] && queues.first?["processor"] as? String == "testsrc", "\(dump)")

        let batch = try QGraphProcess.run("top", pid, "-b", "-n", "2", "-d", "0.3")
        #expect(batch.status == 0, "\(batch.err)")
        #expect(batch.out.components(separatedBy: "qgraph top: launch").count == 3, "two screens: \(batch.out)")
        #expect(batch.out.contains("DEPTH/SIZE") && batch.out.contains("/8") && batch.out.contains("headdrop") && !batch.out.contains("\u{1B}["))

        // Live changes through qgraph ctl: a parameter, a refused value, a queue's size, a paused branch.
        let set = try QGraphProcess.run("ctl", "-g", pid, "set", "delay", "us=1000")
        #expect(set.status == 0 && set.out.contains(#""value":"1000""#), "\(set)")
        let bad = try QGraphProcess.run("ctl", "-g", pid, "set", "delay", "us=-5")
        #expect(bad.status == 1 && bad.err.contains("found '-5' for queue 'delay' parameter 'us', expected an integer in 0…60000000"), "\(bad)")
        let resized = try QGraphProcess.run("ctl", "-g", pid, "queue", "delay", "size=16")
        #expect(resized.status == 0 && resized.out.contains(#""size":16"#), "\(resized)")
        #expect(try QGraphProcess.run("ctl", "-g", pid, "pause", "delay").out.contains(#""paused":true"#))
        #expect(try QGraphProcess.run("ctl", "-g", pid, "resume", "delay").out.contains(#""paused":false"#))
        let sinkSegment = try QGraphProcess.run("ctl", "-g", pid, "replace", "delay", "identity")
        #expect(sinkSegment.status == 1 && sinkSegment.err.contains("found queue 'delay' with 0 out pads, expected a segment that ends in one"), "\(sinkSegment)")
        let badLine = try QGraphProcess.run("ctl", "-g", pid, "insert", "testsrc", "boxblur", "radius=0")
        #expect(badLine.status == 1 && badLine.err.contains("<launch>:1:16: error: found '0' for boxblur parameter 'radius'"), "\(badLine)")

        let session = "qgtop\(getpid())"
        /// Runs tmux through `system` (which waits for its own child): Foundation's
        /// `Process` here can miss the exit of a tmux client whose server lives on.
        func tmux(_ arguments: String...) throws -> (status: Int32, out: String) {
            let output = FileManager.default.temporaryDirectory.appendingPathComponent("\(session).out").path
            defer { unlink(output) }
            let quoted = arguments.map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }.joined(separator: " ")
            let status = system("/usr/bin/tmux \(quoted) > \(output) 2>/dev/null < /dev/null")
            return ((status >> 8) & 0xFF, (try? String(contentsOfFile: output, encoding: .utf8)) ?? "")
        }
        _ = try tmux("new-session", "-d", "-s", session, "-x", "150", "-y", "30", "\(QGraphProcess.binary.path) top \(pid) -d 0.2")
        defer { _ = try? tmux("kill-session", "-t", session) }
        var pane = ""
        for _ in 0..<300 where !pane.contains("headdrop") {
            try await Task.sleep(for: .milliseconds(100))
            pane = try tmux("capture-pane", "-p", "-t", session).out
        }
        #expect(pane.contains("qgraph top: launch") && pane.contains("DEPTH/SIZE") && pane.contains("headdrop"), "\(pane)")
        #expect(pane.components(separatedBy: "qgraph top:").count == 2, "refreshed in place: one screen shows")
        _ = try tmux("send-keys", "-t", session, "q")
        var ended = false
        for _ in 0..<300 where !ended {
            try await Task.sleep(for: .milliseconds(100))
            ended = try tmux("has-session", "-t", session).status != 0
        }
        #expect(ended, "q quit top")
    }

    @Test("run: a second stop signal abandons the drain at once, every buffer accounted for")
    func secondSignalAbandons() async throws {
        // 1000 buffers/s into a deep queue drained at 200/s: draining would take seconds.
        let running = try QGraphProcess(["launch", "testsrc rate=1000 ! queue size=2000 ! delay us=5000", "--drain-timeout", "120", "--json"])
        try await Task.sleep(for: .milliseconds(1500))
        kill(running.process.processIdentifier, SIGTERM)
        try await Task.sleep(for: .milliseconds(300))
        kill(running.process.processIdentifier, SIGINT)
        let result = running.finish()
        #expect(result.status == 0, "\(result.err)")
        let json = try JSONSerialization.jsonObject(with: Data(result.out.utf8)) as! [String: Any]
        #expect(json["ending"] as? String == "interrupted (SIGINT) while draining, abandoned")
        #expect(json["ledger_balanced"] as? Bool == true)
        let queues = json["queues"] as! [[String: Any]]
        #expect(queues.contains { ($0["abandoned"] as! Int) > 0 })
    }

    @Test("launch: a full byte-bound queue is full to the scheduler: its source waits instead of spinning")
    func byteBoundBackPressure() throws {
        // 1024-byte buffers: two fit under 3000 bytes, a third does not (it would at one byte).
        let result = try QGraphProcess.run("launch", "testsrc count=200 rate=1000 ! queue size=4 byte-bound=3000 ! delay us=2000", "--json")
        #expect(result.status == 0, "\(result.err)")
        let json = try JSONSerialization.jsonObject(with: Data(result.out.utf8)) as! [String: Any]
        let pool = (json["pools"] as! [[String: Any]])[0]
        // Each buffer refused as too big is acquired, offered and given back; a few such offers, not thousands.
        #expect((pool["acquired"] as! Int) <= 210, "\(pool)")
        let delay = (json["queues"] as! [[String: Any]]).first { $0["name"] as? String == "delay" }!
        #expect((delay["popped"] as! Int) == 200)
        #expect(json["ledger_balanced"] as? Bool == true)
    }

    @Test("run: --duration stops an endless source; progress lines carry no control codes off a terminal")
    func duration() throws {
        let result = try QGraphProcess.run("launch", "testsrc rate=1000 ! queue ! nullsink", "--duration", "6")
        #expect(result.status == 0)
        #expect(result.out.contains("--duration 6.0 s, drained"))
        #expect(result.err.contains("buffers delivered"))
        #expect(!result.err.contains("\u{1B}"))
    }

    @Test("launch: a one-line pipeline runs to end of stream")
    func launch() throws {
        let result = try QGraphProcess.run("launch", "testsrc count=100 ! queue size=4 management=headdrop ! nullsink", "--quiet")
        #expect(result.status == 0, "\(result.err)")
        #expect(result.out.contains("end of stream"))
        let bad = try QGraphProcess.run("launch", "testsrc ! nulsink")
        #expect(bad.status == 65)
        #expect(bad.err.contains("<launch>:1:11: error: found the unknown processor 'nulsink'"))
        // A link that cannot carry what its upstream sends is refused when read, naming both queues (it used to fail every buffer, exit 70).
        let mismatch = try QGraphProcess.run("launch", "testsrc count=3 ! julia ! nullsink")
        #expect(mismatch.status == 65)
        #expect(mismatch.err.contains("<launch>:1:19: error: found a link from 'testsrc' (sends bytes) into 'julia' (julia takes frames)"), "\(mismatch.err)")
    }

    @Test("run: a processor that fails is a runtime failure, exit 70")
    func runtimeFailure() throws {
        // /dev/full opens, and every write to it fails (ENOSPC).
        let result = try QGraphProcess.run("launch", "testsrc count=5 size=65536 ! filesink path=/dev/full", "--quiet")
        #expect(result.status == 70)
        #expect(result.err.contains("processors failed on filesink (5 buffers; first: cannot write '/dev/full': No space left on device)"), "\(result.err)")
        // So does each frame of a Y4M sink (a frame late in a debug build is dropped before it, so at least one).
        let frames = try QGraphProcess.run("launch", "render frames=5 width=64 height=36 latency=30 ! y4msink path=/dev/full", "--quiet")
        #expect(frames.status == 70)
        #expect(frames.err.contains("processors failed on y4msink (") && frames.err.contains("first: cannot write '/dev/full': No space left on device)"),
                "\(frames.err)")
        // One that cannot be opened refuses the start.
        let unopenable = try QGraphProcess.run("launch", "testsrc count=5 ! filesink path=/nonexistent/dir/out.bin", "--quiet")
        #expect(unopenable.status == 70)
        #expect(unopenable.err.contains("queue 'filesink' could not start: cannot open '/nonexistent/dir/out.bin': No such file or directory"))
    }

    @Test("inspect, format, dot, processors, schema")
    func describing() throws {
        let inspect = try QGraphProcess.run("inspect", "Graphs/ack-nak.yaml")
        #expect(inspect.status == 0)
        #expect(inspect.out.contains("thread 1: acked (nullsink)"))
        // The header counts the threads the listing shows; a render pool holds frames of the render's size.
        let shader = try QGraphProcess.run("inspect", "Graphs/shader-preview.yaml")
        let listed = shader.out.split(separator: "\n").filter { $0.hasPrefix("  thread ") }.count
        #expect(listed == 7 && shader.out.contains("12 connections, \(listed) threads\n"), "\(shader.out)")
        #expect(shader.out.contains("render: 12 buffers × 921600 bytes"), "\(shader.out)")
        #expect(shader.out.contains("out: pad 0 → julia (video rgba 640×360 60 fps), pad 1 → plasma (video rgba 640×360 60 fps)"), "\(shader.out)")
        let format = try QGraphProcess.run("format", "Graphs/balanced-fractal.yaml")
        #expect(format.status == 0)
        #expect(format.out.contains("loadbalancer: {mode: 2D, damping: 0.5, boundary: [8, 8], resistance: 0}"))
        let dot = try QGraphProcess.run("dot", "Graphs/live.yaml")
        #expect(dot.status == 0 && dot.out.hasPrefix("digraph"))
        let processors = try QGraphProcess.run("processors")
        #expect(processors.out.contains("testsrc (source)"))
        let schema = try QGraphProcess.run("schema")
        let shipped = try String(contentsOf: repositoryRoot.appendingPathComponent("docs/graph.schema.json"), encoding: .utf8)
        #expect(schema.out == shipped)
    }
}
