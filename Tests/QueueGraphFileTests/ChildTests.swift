import Foundation
import QueueGraphCore
import QueueGraphFile
import QueueGraphRuntime
import Testing
#if canImport(Glibc)
import Glibc
#endif

extension GraphFile {
    /// The file with its `child` queues' children run by the built
    /// `qgraph` (a test runner is not a program that can be a child).
    func childrenRunByQGraph() -> GraphFile {
        var copy = self
        for i in copy.config.queues.indices where copy.config.queues[i].threading == .child {
            copy.config.queues[i].child.executable = QGraphProcess.binary.path
        }
        return copy
    }
}

/// Graphs whose `threading: child` queues run in child processes (the
/// built `qgraph child`), fed through shared memory.
@Suite("Process boundary", .serialized)
struct ProcessTests {
    /// A scratch directory with `graph.yaml` holding `yaml` (`DIR` replaced by the directory).
    static func graph(_ yaml: String) throws -> (file: GraphFile, directory: URL) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("qg-process-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let path = directory.appendingPathComponent("graph.yaml")
        try yaml.replacingOccurrences(of: "DIR", with: directory.path).write(to: path, atomically: true, encoding: .utf8)
        return (try GraphFile.load(path: path.path, registry: everyProcessor).childrenRunByQGraph(), directory)
    }

    /// The start of a graph file: 30 frames of a bouncing ball at 96×64 (out of 'ball').
    static let ballFrames = """
        queues:
          - name: render
            processor: render
            parameters: {width: 96, height: 64, fps: 25, frames: 30, latency: 25}
            threading: thread
          - name: ball
            processor: ball
            buffers: reuse

        """

    /// Runs a graph to its end and returns its final statistics.
    static func run(_ file: GraphFile) throws -> GraphStatistics {
        let graph = try file.config.createQueueGraph()
        try graph.start()
        #expect(graph.waitUntilFinished(timeoutNanoseconds: 120_000_000_000))
        let stats = graph.stop()
        #expect(graph.failure == nil)
        #expect(stats.ledgerProblems().isEmpty, "\(stats.ledgerProblems())")
        return stats
    }

    /// Runs the graph `yaml` to its end in a fresh directory (DIR), removed afterwards.
    static func run(_ yaml: String) throws -> GraphStatistics {
        let (file, directory) = try graph(yaml)
        defer { try? FileManager.default.removeItem(at: directory) }
        return try run(file)
    }

    /// Runs `yaml` with THREADING a thread, then a child: each run's statistics and its file `output` in DIR.
    static func onThreadThenInChild(_ yaml: String, output: String) throws -> [(stats: GraphStatistics, output: Data)] {
        try ["thread", "child"].map { threading in
            let (file, directory) = try graph(yaml.replacingOccurrences(of: "THREADING", with: threading))
            defer { try? FileManager.default.removeItem(at: directory) }
            let stats = try run(file)
            return (stats, try Data(contentsOf: directory.appendingPathComponent(output)))
        }
    }

    /// Entries of /dev/shm, and the memfds this process has open, named by
    /// QueueGraph (but the render engine's frame arena, which lives as long as the process).
    static func sharedMemoryObjects() -> (devShm: Set<String>, memfds: Int) {
        let devShm = Set((try? FileManager.default.contentsOfDirectory(atPath: "/dev/shm")) ?? []).filter { !$0.hasPrefix("lttng-ust") }
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        let memfds = fds.filter { fd in
            let target = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(fd)")) ?? ""
            return target.hasPrefix("/memfd:qg-") && !target.hasPrefix("/memfd:qg-frame-arena")
        }
        return (devShm, memfds.count)
    }

    @Test("buffers cross into the child and back with their bytes intact, as handles to shared memory")
    func dataRoundTrip() throws {
        let before = Self.sharedMemoryObjects()
        let yaml = """
            queues:
              - name: src
                processor: testsrc
                parameters: {size: 4096, count: 500, pattern: random}
              - name: effect
                processor: identity
                threading: THREADING
              - name: sink
                processor: filesink
                parameters: {path: DIR/out.bin}
                threading: thread
            connections: [src -> effect, effect -> sink]
            """
        let runs = try Self.onThreadThenInChild(yaml, output: "out.bin")
        let (stats, expected) = (runs[1].stats, runs[0].output)
        #expect(expected.count == 500 * 4096)
        #expect(runs[1].output == expected)
        let link = try #require(stats.links.first)
        #expect(link.zeroCopy == 500 && link.copied == 0 && link.returned == 500 && link.lost == 0 && link.starts == 1)
        #expect(stats[queue: "effect"]?.popped == 500)   // the child's row, merged
        #expect(stats[queue: "effect (link)"]?.popped == 500)
        let after = Self.sharedMemoryObjects()
        #expect(after.devShm.subtracting(before.devShm).isEmpty && after.memfds == before.memfds)
    }

    @Test("a child that rewrites shared frames in place sends the parent the same pixels as a thread does")
    func childRewritesFrames() throws {
        // One stream of frames, teed (so each frame is shared, read-only):
        // one branch applies the effect on a thread, the other in a child.
        let (file, directory) = try Self.graph(Self.ballFrames + """
              - name: tee
                processor: tee
                pads: 2
              - name: hold
                processor: delay
                parameters: {us: 20000}
                threading: thread
              - name: here
                processor: colormatrix
                buffers: reuse
              - name: there
                processor: colormatrix
                buffers: reuse
                threading: child
              - name: a
                processor: y4msink
                parameters: {path: DIR/a.y4m}
              - name: b
                processor: y4msink
                parameters: {path: DIR/b.y4m}
                threading: thread
            connections: [render -> ball, ball -> tee, "tee:0 -> hold", hold -> here, "tee:1 -> there", here -> a, there -> b]
            """)
        defer { try? FileManager.default.removeItem(at: directory) }
        let stats = try Self.run(file)
        #expect(stats.dropped(.late) == 0)   // a second of slack per frame, even in a debug build under load
        let here = try Data(contentsOf: directory.appendingPathComponent("a.y4m"))
        #expect(here.count > 30 * 96 * 64)
        #expect(try Data(contentsOf: directory.appendingPathComponent("b.y4m")) == here)
        let link = try #require(stats.links.first)
        // A frame the other branch still holds (20 ms in 'hold') is read-only: it goes through staging and
        // comes back in a copy. One the other branch has let go of already crosses as a handle to the arena.
        #expect(link.copied + link.zeroCopy == 30 && link.copied > 0 && link.returned == 30, "\(link)")
    }

    @Test("render frames cross into a child as handles to the engine's shared arena and come back rewritten in place")
    func framesCrossWithoutCopy() throws {
        let yaml = Self.ballFrames + """
              - name: effect
                processor: colormatrix
                buffers: reuse
                threading: THREADING
              - name: out
                processor: y4msink
                parameters: {path: DIR/out.y4m}
                threading: thread
            connections: [render -> ball, ball -> effect, effect -> out]
            """
        let runs = try Self.onThreadThenInChild(yaml, output: "out.y4m")
        let (stats, expected) = (runs[1].stats, runs[0].output)
        #expect(runs[0].stats.dropped(.late) == 0 && stats.dropped(.late) == 0)
        #expect(expected.count > 30 * 96 * 64)
        #expect(runs[1].output == expected)   // media times are exact: both runs render the same frames
        let link = try #require(stats.links.first)
        #expect(link.zeroCopy == 30 && link.copied == 0 && link.returned == 30)
    }

    @Test("a program started as a child that does not hand itself to ChildProgram.run starts no children of its own")
    func childWithoutHandOver() throws {
        let (declared, directory) = try Self.graph("""
            queues:
              - name: src
                processor: testsrc
                parameters: {count: 10}
              - name: sink
                processor: nullsink
                threading: child
            connections: [src -> sink]
            """)
        defer { try? FileManager.default.removeItem(at: directory) }
        var file = declared
        // The child runs the whole graph again (`qgraph run`), as a program that forgot the hand-over would
        // (through sh, which takes the `--qg-child` words as its own arguments).
        file.config.queues[1].child = ChildOptions(executable: "/bin/sh", arguments: [
            "-c", "exec '\(QGraphProcess.binary.path)' run --quiet '\(directory.appendingPathComponent("graph.yaml").path)'", "sh",
        ])
        let graph = try file.config.createQueueGraph()
        #expect {
            try graph.start()
        } throws: { error in
            "\(error)".contains("exited with status 70 before it was ready")
        }
        #expect(graph.stop().ledgerProblems().isEmpty)
    }

    @Test("discipline acts in the child, where the queue's buffers wait: a slow LIFO queue serves the newest first")
    func disciplineInTheChild() throws {
        let (file, directory) = try Self.graph("""
            queues:
              - name: src
                processor: testsrc
                parameters: {size: 1, count: 50, pattern: counter}
              - name: slow
                processor: delay
                parameters: {us: 2000}
                discipline: lifo
                threading: child
              - name: out
                processor: filesink
                parameters: {path: DIR/order.bin}
            connections: [src -> slow, slow -> out]
            """)
        defer { try? FileManager.default.removeItem(at: directory) }
        _ = try Self.run(file)
        let order = [UInt8](try Data(contentsOf: directory.appendingPathComponent("order.bin")))   // buffer n's byte is n
        #expect(Set(order) == Set(0..<50) && order.count == 50)
        #expect(order != order.sorted())
        let last = Array(order.suffix(10))   // all had arrived by then: newest first
        #expect(zip(last, last.dropFirst()).allSatisfy { $0 > $1 })
    }

    @Test("ack: the sender hears once per buffer the child's processor finished")
    func ackAcrossTheBoundary() throws {
        let stats = try Self.run("""
            queues:
              - name: src
                processor: testsrc
                parameters: {size: 256, count: 1000}
              - name: sink
                processor: nullsink
                sync: ack
                threading: child
            connections: [src -> sink]
            """)
        #expect(stats[queue: "sink (link)"]?.acks == 1000)   // sent to src, in the parent
        #expect(stats[queue: "sink"]?.processed == 1000)
    }

    @Test("nak: every buffer the child's taildrop queue drops is naked to the sender, with its reason")
    func nakAcrossTheBoundary() throws {
        let stats = try Self.run("""
            queues:
              - name: src
                processor: testsrc
                parameters: {size: 256, count: 600, rate: 6000}
              - name: slow
                processor: delay
                parameters: {us: 1000}
                size: 4
                management: taildrop
                sync: nak
                threading: child
            connections: [src -> slow]
            """)
        let child = try #require(stats[queue: "slow"])
        let link = try #require(stats[queue: "slow (link)"])
        let drops = child.dropped[.taildrop] ?? 0
        #expect(drops > 0)
        #expect(link.naks == drops)
        #expect(child.processed + drops == 600)
    }

    /// A stream through a child (slower than its source) that the test kills once 300 buffers were delivered.
    static func killMidStream(restart: String) throws -> (stats: GraphStatistics, failure: String?, deliveredBeforeKill: Int, killed: Int32) {
        let (file, directory) = try graph("""
            queues:
              - name: src
                processor: testsrc
                parameters: {size: 4096, count: 1500, rate: 3000, pattern: counter}
              - name: effect
                processor: identity
                threading: child
                restart: \(restart)
                sync: nak
                size: 16
              - name: slow
                processor: delay
                parameters: {us: 500}
              - name: sink
                processor: nullsink
                threading: thread
            connections: [src -> effect, effect -> slow, slow -> sink]
            """)
        defer { try? FileManager.default.removeItem(at: directory) }
        let graph = try file.config.createQueueGraph()
        try graph.start()
        var delivered = 0
        while delivered < 300 {
            #expect(!graph.waitUntilFinished(timeoutNanoseconds: 5_000_000), "the stream ended before the kill")
            delivered = graph.statistics()[queue: "sink"]?.processed ?? 0
        }
        let pid = try #require(graph.statistics().links.first?.pid)
        #expect(pid > 0)
        #expect(watchers(of: pid) == 1)   // a thread waits for this child to end
        kill(pid, SIGKILL)
        #expect(graph.waitUntilFinished(timeoutNanoseconds: 120_000_000_000))
        return (graph.stop(), graph.failure, delivered, pid)
    }

    /// Threads of this process still watching child `pid` (named qg-watch-PID, cut to 15 bytes).
    static func watchers(of pid: Int32) -> Int {
        let name = String("qg-watch-\(pid)".prefix(15))
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
        return tasks.filter { task in
            (try? String(contentsOfFile: "/proc/self/task/\(task)/comm", encoding: .utf8))?.trimmingCharacters(in: .newlines) == name
        }.count
    }

    @Test("SIGKILL of the child mid-stream: detected, its buffers lost with reason and naked, restart: always resumes")
    func killedChildRestarts() throws {
        let before = Self.sharedMemoryObjects()
        let (stats, failure, deliveredBeforeKill, killed) = try Self.killMidStream(restart: "always")
        #expect(Self.watchers(of: killed) == 0)   // the thread that saw it die was joined
        #expect(failure == nil)
        #expect(stats.ledgerProblems().isEmpty, "\(stats.ledgerProblems())")
        let link = try #require(stats.links.first)
        #expect(link.starts == 2)
        #expect(link.lastDeathDetectedAt != nil)
        let delivered = stats[queue: "sink"]?.processed ?? 0
        #expect(delivered > deliveredBeforeKill)   // the new child carried the stream on
        // The child is slower than the source, so its 16-deep queue is full when it dies.
        #expect(link.lost > 0)
        let linkRow = try #require(stats[queue: "effect (link)"])
        #expect(linkRow.dropped[.lost] == link.lost && linkRow.naks == link.lost)
        #expect(delivered + link.lost == 1500)
        let pool = try #require(stats.pools.first { $0.name == "src" })
        #expect(pool.acquired == 1500 && pool.consumed == delivered && pool.dropped == link.lost)
        let after = Self.sharedMemoryObjects()
        #expect(after.devShm.subtracting(before.devShm).isEmpty && after.memfds == before.memfds)
    }

    @Test("SIGKILL of the child with restart: never stops the graph with a clear error, ledger balanced")
    func killedChildStopsTheGraph() throws {
        let (stats, failure, _, killed) = try Self.killMidStream(restart: "never")
        #expect(Self.watchers(of: killed) == 0)
        let message = try #require(failure)
        #expect(message.contains("queue 'effect': its child process") && message.contains("was killed by signal 9 (KILL)")
                && message.contains("restart: never"))
        #expect(stats.ledgerProblems().isEmpty, "\(stats.ledgerProblems())")
        let link = try #require(stats.links.first)
        #expect(link.starts == 1 && link.failure == message)
        let pool = try #require(stats.pools.first { $0.name == "src" })
        #expect(pool.acquired == pool.consumed + pool.dropped && pool.inUse == 0)
    }
}
