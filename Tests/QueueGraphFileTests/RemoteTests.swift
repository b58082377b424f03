import Foundation
@_spi(Runtime) import QueueGraphCore
import QueueGraphFile
@testable import QueueGraphRemote
import QueueGraphRender
import QueueGraphRuntime
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Hosts for tests on one machine: network namespaces, each joined to this
/// one by a veth pair (10.S.N.1 here, 10.S.N.2 there, S = 89 for the first
/// set a process makes, one more for each next, so that suites running at
/// once do not meet), each running the built `qgraph worker` with
/// `UCX_TLS=tcp`. Needs root (CI runs as root).
final class TestHosts {
    struct Host {
        let name: String
        let namespace: String
        /// This side's end of the veth pair: taking it down cuts the host off.
        let link: String
        let address: String
        let port: Int
        let log: URL
    }

    let hosts: [Host]
    let directory: URL
    let key: URL
    private var workers: [Int: Process] = [:]

    static var available: Bool { getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip") }
    /// Sets of hosts made so far in this process.
    private static let sets = Locked(0)

    init(count: Int) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("qg-remote-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        key = directory.appendingPathComponent("key")
        try Data("test key: \(UUID().uuidString)".utf8).write(to: key)
        let set = TestHosts.sets.withLock { count in defer { count += 1 }; return count }
        let tag = "\(getpid() % 100_000)s\(set)"
        hosts = (1...count).map { n in
            Host(name: "h\(n)", namespace: "qgt\(tag)h\(n)", link: "qgt\(tag)c\(n)", address: "10.\(89 + set % 100).\(n).2", port: 7700 + n,
                 log: FileManager.default.temporaryDirectory.appendingPathComponent("qg-remote-\(tag)-h\(n).log"))
        }
        for (n, host) in zip(1..., hosts) {
            TestHosts.shell("ip netns del \(host.namespace) 2>/dev/null; ip link del \(host.link) 2>/dev/null")
            try TestHosts.must("""
                ip netns add \(host.namespace) && ip link add \(host.link) type veth peer name eth\(n) netns \(host.namespace) \
                && ip addr add 10.\(89 + set % 100).\(n).1/24 dev \(host.link) && ip link set \(host.link) up \
                && ip -n \(host.namespace) addr add \(host.address)/24 dev eth\(n) && ip -n \(host.namespace) link set eth\(n) up \
                && ip -n \(host.namespace) link set lo up
                """)
        }
        setenv("UCX_TLS", "tcp", 1)   // this process is the coordinator
        for n in hosts.indices { try startWorker(n) }
    }

    deinit {
        for n in workers.keys { killWorker(n) }
        for host in hosts { TestHosts.shell("ip netns del \(host.namespace) 2>/dev/null; ip link del \(host.link) 2>/dev/null") }
        try? FileManager.default.removeItem(at: directory)
    }

    /// The graph file's `hosts:`. A host is taken as gone after a second of
    /// silence, not the default 150 ms: the suite's other tests load both
    /// cores, and no test here times detection (`Tools/bench remote` does).
    var yaml: String { "hosts:\n" + hosts.map { "  - {name: \($0.name), address: \($0.address), port: \($0.port), silence-ms: 1000}\n" }.joined() }

    /// Starts host `n`'s worker and waits until it listens.
    func startWorker(_ n: Int, key: URL? = nil) throws {
        let host = hosts[n]
        _ = FileManager.default.createFile(atPath: host.log.path, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        process.arguments = ["netns", "exec", host.namespace, "env", "UCX_TLS=tcp", QGraphProcess.binary.path, "worker",
                             "--listen", "\(host.address):\(host.port)", "--key", (key ?? self.key).path]
        process.standardError = try FileHandle(forWritingTo: host.log)
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        workers[n] = process
        for _ in 0..<1000 {
            if log(n).contains("listening on") { return }
            if !process.isRunning { throw ProcessorError("the worker of \(host.name) ended: \(log(n))") }
            usleep(10_000)
        }
        throw ProcessorError("the worker of \(host.name) did not listen within 10 s: \(log(n))")
    }

    /// What host `n`'s worker logged.
    func log(_ n: Int) -> String { (try? String(contentsOf: hosts[n].log, encoding: .utf8)) ?? "" }

    /// Kills host `n`'s worker (SIGKILL) and waits for it.
    func killWorker(_ n: Int) {
        guard let process = workers.removeValue(forKey: n) else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// Takes this side of host `n`'s link down (or up again).
    func cut(_ n: Int, down: Bool = true) { TestHosts.shell("ip link set \(hosts[n].link) \(down ? "down" : "up")") }

    /// A graph file in the hosts' directory (DIR replaced by it), loaded
    /// with the hosts' transport; `hosts` replaces theirs.
    func graph(_ body: String, key: URL? = nil, name: String = "graph.yaml", hosts: String? = nil) throws -> GraphFile {
        let path = directory.appendingPathComponent(name)
        let text = ((hosts ?? yaml) + body).replacingOccurrences(of: "DIR", with: directory.path)
        try text.write(to: path, atomically: true, encoding: .utf8)
        var file = try GraphFile.load(path: path.path, registry: everyProcessor)
        file.config.remoteLinks = RemoteHosts(key: try SharedKey(file: (key ?? self.key).path), file: (text, path.path))
        return file
    }

    @discardableResult
    static func shell(_ command: String) -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        do { try process.run() } catch { return (127, "\(error)") }
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self))
    }

    static func must(_ command: String) throws {
        let (status, output) = shell(command)
        if status != 0 { throw ProcessorError("`\(command)` failed (\(status)): \(output)") }
    }
}

/// Remote hosts run in the serialization domain of the process-boundary
/// tests: both count what the process holds (memfds of shared pools).
extension ProcessTests {
    /// Graphs whose `threading: remote` queues run on other hosts (network
    /// namespaces here), over UCX's TCP transport.
    @Suite("Remote hosts", .serialized, .enabled(if: TestHosts.available, "needs root and iproute2 for network namespaces"))
    struct RemoteTests {
        /// Runs a graph to its end; its final statistics and failure.
        static func run(_ file: GraphFile, during: (QueueGraph) throws -> Void = { _ in }) throws -> (stats: GraphStatistics, failure: String?) {
            let graph = try file.config.createQueueGraph()
            try graph.start()
            try during(graph)
            #expect(graph.waitUntilFinished(timeoutNanoseconds: 60_000_000_000), "the graph did not end")
            let stats = graph.stop()
            #expect(stats.ledgerProblems().isEmpty, "\(stats.ledgerProblems())")
            return (stats, graph.failure)
        }

        /// A Julia set on a compound queue of two servers (`servers`: its `server-hosts:`), written to DIR/NAME.y4m.
        static func compound(_ servers: String, _ name: String, frames: Int) -> String {
            """
            queues:
              - {name: render, processor: render, parameters: {width: 160, height: 96, fps: 20, frames: \(frames), latency: 40}, pool: {count: 4}, threading: thread}
              - {name: julia, processor: julia, parameters: {iterations: 200}, buffers: reuse, threading: thread, servers: 2, \(servers)
                 loadbalancer: {mode: 2D, damping: 0.5, boundary: [8, 8]}}
              - {name: out, processor: y4msink, parameters: {path: DIR/\(name).y4m}, threading: thread}
            connections: [render -> julia, julia -> out]

            """
        }

        static func chain(remote: Bool) -> String {
            func placed(_ host: String) -> String { remote ? "threading: remote, host: \(host)" : "threading: thread" }
            return """
                queues:
                  - {name: src, processor: testsrc, parameters: {count: 3000, size: 20000, pattern: random}, pool: {count: 24}}
                  - {name: a, processor: identity, \(placed("h1")), size: 8, sync: ack}
                  - {name: ma, processor: identity, threading: thread, size: 4}
                  - {name: b, processor: identity, \(placed("h2")), size: 8}
                  - {name: fan, processor: tee, pads: 2}
                  - {name: mb, processor: identity, threading: thread, size: 4}
                  - {name: c, processor: identity, \(placed("h3")), size: 8}
                  - {name: out, processor: filesink, parameters: {path: DIR/out-\(remote).bin}, threading: thread}
                  - {name: count, processor: nullsink, threading: thread}
                connections: [src -> a, a -> ma, ma -> b, b -> fan, fan:0 -> mb, fan:1 -> count, mb -> c, c -> out]

                """
        }

        @Test("a chain across 3 hosts: every byte arrives as on one machine, the ledger balances, each host's queues are in the statistics")
        func threeHosts() throws {
            let hosts = try TestHosts(count: 3)
            // A long comment makes the run request (the file's text) far larger than UCX's eager messages.
            let comment = String(repeating: "# the graph file travels to each worker whole, comments and all\n", count: 2000)
            let (stats, failure) = try Self.run(try hosts.graph(Self.chain(remote: true) + comment))
            #expect(failure == nil)
            let (local, _) = try Self.run(try hosts.graph(Self.chain(remote: false), name: "local.yaml"))
            let out = try Data(contentsOf: hosts.directory.appendingPathComponent("out-true.bin"))
            #expect(out.count == 3000 * 20000, "\(stats.queues.map { "\($0.name) \($0.arrived)/\($0.popped) \($0.dropped)" })")
            #expect(out == (try Data(contentsOf: hosts.directory.appendingPathComponent("out-false.bin"))))
            #expect(stats.queues.first { $0.name == "count" }?.popped == local.queues.first { $0.name == "count" }?.popped)
            for name in ["a", "b", "c", "fan"] { #expect(stats.queues.first { $0.name == name }?.popped == 3000, "\(name)") }
            // 'a' acks its sender: on the host (its row), and across the link to src.
            #expect(stats.queues.first { $0.name == "a" }?.acks == 3000 && stats.queues.first { $0.name == "a (link)" }?.acks == 3000)
            #expect(stats.links.count == 3)
            for link in stats.links {
                #expect(link.starts == 1 && link.lost == 0 && link.host != nil)
                #expect(link.zeroCopy + link.copied == 3000)
            }
            #expect(stats.links.first { $0.queue == "a" }?.zeroCopy == 3000, "src's pool is registered with UCX")
            for n in 0..<3 { #expect(hosts.log(n).contains("proved the key") && hosts.log(n).contains("finished"), "\(hosts.log(n))") }
        }

        @Test("frames changed in place on another host come back into the same buffers: the video is the one a thread makes")
        func framesChangedRemotely() throws {
            let hosts = try TestHosts(count: 1)
            func yaml(_ threading: String) -> String {
                ProcessTests.ballFrames + """
                      - {name: effect, processor: colormatrix, buffers: reuse, \(threading)}
                      - {name: out, processor: y4msink, parameters: {path: DIR/out-\(threading.count).y4m}, threading: thread}
                    connections: [render -> ball, ball -> effect, effect -> out]

                    """
            }
            let remote = "threading: remote, host: h1", local = "threading: thread"
            let (stats, failure) = try Self.run(try hosts.graph(yaml(remote)))
            _ = try Self.run(try hosts.graph(yaml(local), name: "local.yaml"))
            #expect(failure == nil)
            let video = try Data(contentsOf: hosts.directory.appendingPathComponent("out-\(remote.count).y4m"))
            #expect(video.count > 30 * 96 * 64)
            #expect(video == (try Data(contentsOf: hosts.directory.appendingPathComponent("out-\(local.count).y4m"))))
            let link = try #require(stats.links.first)
            #expect(link.returned == 30 && link.lost == 0 && link.zeroCopy == 30)
        }

        @Test("a part's last results, sent back by rendezvous as it finishes, all land: its memory stays until the coordinator closes")
        func lastResultsLand() throws {
            let hosts = try TestHosts(count: 1)
            // Large results take the transfer longer than the worker takes to see its part finished.
            let file = try hosts.graph("""
                queues:
                  - {name: src, processor: testsrc, parameters: {size: 33554432, count: 2, pattern: counter}, pool: {count: 2}}
                  - {name: effect, processor: identity, buffers: reuse, threading: remote, host: h1}
                  - {name: sink, processor: nullsink, threading: thread}
                connections: [src -> effect, effect -> sink]

                """)
            for _ in 0..<4 {
                let (stats, failure) = try Self.run(file)
                #expect(failure == nil)
                let link = try #require(stats.links.first)
                #expect(link.lost == 0 && link.lastExit == nil && link.returned == 2, "\(link)")
                #expect(stats.queues.first { $0.name == "sink" }?.popped == 2)
            }
        }

        @Test("a compound queue with a server on another host makes the frames it makes on one machine, and balances both servers")
        func remoteServer() throws {
            let hosts = try TestHosts(count: 1)
            func yaml(_ servers: String, _ name: String) -> String { Self.compound(servers, name, frames: 24) }
            let file = try hosts.graph(yaml("server-hosts: [local, h1],", "remote"))
            let graph = try file.config.createQueueGraph()
            try graph.start()
            #expect(graph.waitUntilFinished(timeoutNanoseconds: 60_000_000_000))
            let compound = try #require(graph.processor(ofQueue: "julia") as? CompoundNode).statistics
            let stats = graph.stop()
            #expect(graph.failure == nil && stats.ledgerProblems().isEmpty)
            _ = try Self.run(try hosts.graph(yaml("", "local"), name: "local.yaml"))
            let remote = try Data(contentsOf: hosts.directory.appendingPathComponent("remote.y4m"))
            #expect(remote.count > 24 * 160 * 96)
            #expect(remote == (try Data(contentsOf: hosts.directory.appendingPathComponent("local.y4m"))))
            #expect(compound.frames == 24 && compound.serverNanoseconds.allSatisfy { $0 > 0 })
            #expect(compound.recent.last!.parts.allSatisfy { !$0.isEmpty })
            #expect(hosts.log(0).contains("runs server 1 of 'julia'"), "\(hosts.log(0))")
        }

        @Test("a compound server whose host dies: this machine renders its parts, no frame is lost, and the host serves again once back")
        func remoteServerFailover() throws {
            let hosts = try TestHosts(count: 1)
            func yaml(_ servers: String, _ name: String) -> String { Self.compound(servers, name, frames: 60) }
            var compound: CompoundStatistics?
            let (stats, failure) = try Self.run(try hosts.graph(yaml("server-hosts: [local, h1],", "remote"))) { graph in
                let node = try #require(graph.processor(ofQueue: "julia") as? CompoundNode)
                func wait(_ condition: () -> Bool) { for _ in 0..<1000 where !condition() { usleep(10_000) } }
                wait { node.statistics.frames >= 8 }
                hosts.killWorker(0)
                wait { node.statistics.failovers[1] >= 3 }
                try hosts.startWorker(0)
                wait { hosts.log(0).contains("runs server 1 of 'julia'") }
                compound = node.statistics
            }
            #expect(failure == nil)
            #expect(stats[queue: "out"]?.processed == 60)
            let during = try #require(compound)
            #expect(during.failovers[0] == 0 && during.failovers[1] >= 3 && during.lastFailover?.contains("server 1: host 'h1'") == true,
                    "\(during.failovers) \(during.lastFailover ?? "")")
            #expect(hosts.log(0).contains("runs server 1 of 'julia'"), "the restarted worker served again: \(hosts.log(0))")
            _ = try Self.run(try hosts.graph(yaml("", "local"), name: "local.yaml"))
            let remote = try Data(contentsOf: hosts.directory.appendingPathComponent("remote.y4m"))
            #expect(remote == (try Data(contentsOf: hosts.directory.appendingPathComponent("local.y4m"))), "the frames are the ones one machine makes")
        }

        @Test("mixed sizes keep their order: a small buffer sent in a batch never overtakes a large one still landing by rendezvous")
        func mixedSizesInOrder() throws {
            let hosts = try TestHosts(count: 1)
            let file = try hosts.graph("""
                queues:
                  - {name: in, processor: identity}
                  - {name: far, processor: identity, threading: remote, host: h1, size: 16}
                  - {name: out, processor: filesink, parameters: {path: DIR/order.bin}, threading: thread}
                connections: [in -> far, far -> out]

                """)
            let graph = try file.config.createQueueGraph()
            let input = try graph.input("in")
            try graph.start()
            let pool = BufferPool(name: "app", count: 24, payloadCapacity: 300_000)
            var expected = Data()
            for n in 0..<600 {
                let size = n % 4 == 0 ? 300_000 : 100 + n   // every fourth large (rendezvous), the rest batched
                var buffer = pool.createBuffer(payloadSize: size, pad: -1)
                while buffer == nil { usleep(200); buffer = pool.createBuffer(payloadSize: size, pad: -1) }
                let bytes = (0..<size).map { UInt8(truncatingIfNeeded: n &+ $0 / 251) }
                bytes.withUnsafeBytes { buffer!.payload.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: size) }
                expected.append(contentsOf: bytes)
                #expect(input.push(buffer!, whenFull: .wait(timeoutNanoseconds: 10_000_000_000)) == .accepted)
            }
            input.endOfStream()
            #expect(graph.waitUntilFinished(timeoutNanoseconds: 60_000_000_000))
            let stats = graph.stop()
            #expect(graph.failure == nil && stats.ledgerProblems().isEmpty, "\(graph.failure ?? "") \(stats.ledgerProblems())")
            let written = try Data(contentsOf: hosts.directory.appendingPathComponent("order.bin"))
            #expect(written.count == expected.count && written == expected, "the bytes arrive in the order they were sent")
            #expect((stats.links.first?.copied ?? 0) >= 450)
        }

        @Test("nak: every buffer the host's taildrop queue drops is counted there and naked to the sender here")
        func nakAcrossHosts() throws {
            let hosts = try TestHosts(count: 1)
            let (stats, failure) = try Self.run(try hosts.graph("""
                queues:
                  - {name: src, processor: testsrc, parameters: {size: 256, count: 600, rate: 6000}, pool: {count: 32}}
                  - {name: slow, processor: delay, parameters: {us: 1000}, size: 4, management: taildrop, sync: nak, threading: remote, host: h1}
                connections: [src -> slow]

                """))
            #expect(failure == nil)
            let far = try #require(stats[queue: "slow"])
            let link = try #require(stats[queue: "slow (link)"])
            let drops = far.dropped[.taildrop] ?? 0
            #expect(drops > 0)
            #expect(link.naks == drops && (link.dropped[.taildrop] ?? 0) == 0, "drops are counted on the host that dropped, not twice")
            #expect(far.processed + drops == 600)
        }

        @Test("qgraph run: a killed worker ends the run with exit 70 and the host in the reason")
        func exitStatus() throws {
            let hosts = try TestHosts(count: 1)
            let file = try hosts.graph(Self.slow.replacingOccurrences(of: ", RESTART", with: ""))
            let run = try QGraphProcess(["run", file.file, "--key", hosts.key.path, "--quiet"])
            usleep(1_500_000)
            hosts.killWorker(0)
            let result = run.finish()
            #expect(result.status == 70, "\(result.err)")
            let host = hosts.hosts[0]
            #expect(result.err.contains("host 'h1' (\(host.address):7701)"), "\(result.err)")
            #expect(result.out.contains("remote 'far' on h1 \(host.address):7701: 1 session"), "\(result.out)")
        }

        @Test("a killed coordinator: the worker stops its part and runs the next coordinator's")
        func killedCoordinator() throws {
            let hosts = try TestHosts(count: 1)
            let file = try hosts.graph(Self.slow.replacingOccurrences(of: ", RESTART", with: ""))
            let run = try QGraphProcess(["run", file.file, "--key", hosts.key.path, "--quiet"])
            for _ in 0..<500 where !hosts.log(0).contains("runs part") { usleep(10_000) }
            kill(run.process.processIdentifier, SIGKILL)
            _ = run.finish()
            for _ in 0..<300 where !hosts.log(0).contains("ended:") { usleep(10_000) }
            #expect(hosts.log(0).contains("session 1: ended:"), "\(hosts.log(0))")
            let (stats, failure) = try Self.run(try hosts.graph(Self.slow.replacingOccurrences(of: ", RESTART", with: "")
                .replacingOccurrences(of: "count: 4000", with: "count: 200")))
            #expect(failure == nil && stats[queue: "sink"]?.popped == 200)
        }

        static let slow = """
            queues:
              - {name: src, processor: testsrc, parameters: {count: 4000, size: 4096, rate: 2000}, pool: {count: 32}}
              - {name: far, processor: delay, parameters: {us: 2000}, threading: remote, host: h1, size: 8, RESTART}
              - {name: sink, processor: nullsink, threading: thread}
            connections: [src -> far, far -> sink]

            """

        @Test("a killed worker stops the graph with the reason; what it held is counted lost; nothing hangs")
        func killedWorker() throws {
            let hosts = try TestHosts(count: 1)
            let (stats, failure) = try Self.run(try hosts.graph(Self.slow.replacingOccurrences(of: ", RESTART", with: ""))) { _ in
                usleep(500_000)
                hosts.killWorker(0)
            }
            #expect(failure?.contains("host 'h1'") == true, "\(failure ?? "no failure")")
            let link = try #require(stats.links.first)
            #expect(link.lost > 0 && link.failure != nil && link.lastDeathDetectedAt != nil)
        }

        @Test("restart: always reconnects when the worker is back, and the stream goes on")
        func restartedWorker() throws {
            let hosts = try TestHosts(count: 1)
            let (stats, failure) = try Self.run(try hosts.graph(Self.slow.replacingOccurrences(of: "RESTART", with: "restart: always"))) { _ in
                usleep(500_000)
                hosts.killWorker(0)
                usleep(300_000)
                try hosts.startWorker(0)
            }
            #expect(failure == nil)
            let link = try #require(stats.links.first)
            #expect(link.starts == 2 && link.lost > 0)
            let delivered = stats.queues.first { $0.name == "sink" }?.popped ?? 0
            #expect(delivered > 0 && delivered + link.lost <= 4000)
            #expect(hosts.log(0).contains("finished"), "the new worker ran the rest of the stream to its end")
        }

        @Test("a cut network (the veth taken down) is noticed by the silence and stops the graph")
        func cutLink() throws {
            let hosts = try TestHosts(count: 1)
            defer { hosts.cut(0, down: false) }
            let (stats, failure) = try Self.run(try hosts.graph(Self.slow.replacingOccurrences(of: ", RESTART", with: ""))) { _ in
                usleep(500_000)
                hosts.cut(0)
            }
            #expect(failure?.contains("no word from it") == true, "\(failure ?? "no failure")")
            #expect((stats.links.first?.lost ?? 0) > 0)
        }

        @Test("a coordinator with another key is refused and logged; the worker listens only on its address")
        func wrongKey() throws {
            let hosts = try TestHosts(count: 1)
            let other = hosts.directory.appendingPathComponent("other-key")
            try Data("another key altogether, 32 bytes".utf8).write(to: other)
            let graph = try hosts.graph(Self.slow.replacingOccurrences(of: ", RESTART", with: ""), key: other).config.createQueueGraph()
            let refusal = #expect(throws: (any Error).self) { try graph.start() }
            #expect("\(refusal.map { "\($0)" } ?? "")".contains("the worker refused the session: a wrong proof of the key"), "\(String(describing: refusal))")
            #expect(hosts.log(0).contains("refused \(hosts.hosts[0].address.dropLast(2)).1:"), "\(hosts.log(0))")
            #expect(hosts.log(0).contains("a wrong proof of the key"))
            let listening = TestHosts.shell("ip netns exec \(hosts.hosts[0].namespace) ss -ltnH").output
            #expect(listening.contains("\(hosts.hosts[0].address):7701") && !listening.contains("0.0.0.0:7701") && !listening.contains("*:7701"), "\(listening)")
        }

        @Test("a host whose worker is not running: the start fails naming the host, its address and what to check")
        func noWorker() throws {
            let hosts = try TestHosts(count: 1)
            hosts.killWorker(0)
            let graph = try hosts.graph(Self.slow.replacingOccurrences(of: ", RESTART", with: "")).config.createQueueGraph()
            let refusal = #expect(throws: (any Error).self) { try graph.start() }
            let text = "\(refusal.map { "\($0)" } ?? "")"
            #expect(text.contains("host 'h1' (\(hosts.hosts[0].address):\(hosts.hosts[0].port)): cannot reach its worker"), "\(text)")
            #expect(text.contains("is `qgraph worker --listen \(hosts.hosts[0].address):\(hosts.hosts[0].port)` running there"), "\(text)")
        }

        @Test("a coordinator of another wire protocol is refused, and told both versions")
        func otherProtocol() throws {
            let hosts = try TestHosts(count: 1)
            let client = try FuzzClient(address: hosts.hosts[0].address, port: hosts.hosts[0].port)
            defer { client.close() }
            try client.prove(try SharedKey(file: hosts.key.path))
            var request = RunRequest(file: "queues: []", path: "/x", queue: "q", capacity: 3, format: 0, returnsPayload: false)
            request.protocolVersion = nil   // as the first release sent it
            client.send(.run, try JSONEncoder().encode(request))
            for _ in 0..<300 where !hosts.log(0).contains("refused") { usleep(10_000) }
            #expect(hosts.log(0).contains("a coordinator speaking wire protocol 1, this worker \(RunRequest.protocolVersion)"), "\(hosts.log(0))")
            #expect(client.refusal?.contains("run the same QueueGraph release on both") == true)
        }

        @Test("a worker of the first wire protocol (its ready says no version): the coordinator refuses it before any buffer")
        func oldWorker() throws {
            let hosts = try TestHosts(count: 1)
            let key = try SharedKey(file: hosts.key.path)
            let worker = try OldWorker(address: "127.0.0.1", port: 7790, key: key)
            defer { worker.stop() }
            let graph = try hosts.graph("""
                queues:
                  - {name: src, processor: testsrc, parameters: {count: 10}}
                  - {name: far, processor: nullsink, threading: remote, host: old}
                connections: [src -> far]

                """, hosts: "hosts:\n  - {name: old, address: 127.0.0.1, port: 7790}\n").config.createQueueGraph()
            let refusal = #expect(throws: (any Error).self) { try graph.start() }
            let text = "\(refusal.map { "\($0)" } ?? "")"
            #expect(text.contains("host 'old' (127.0.0.1:7790): the worker speaks wire protocol 1, this coordinator \(RunRequest.protocolVersion)"), "\(text)")
            #expect(worker.buffers.withLock { $0 } == 0)
        }

        @Test("malformed messages, before and after the key is proved, end their session and never the worker")
        func fuzz() throws {
            let hosts = try TestHosts(count: 1)
            let host = hosts.hosts[0]
            let key = try SharedKey(file: hosts.key.path)
            var generator = SystemRandomNumberGenerator()
            // Raw bytes to the port, not UCX at all.
            for _ in 0..<5 {
                TestHosts.shell("head -c \(Int.random(in: 1...4096, using: &generator)) /dev/urandom | timeout 2 bash -c 'cat > /dev/tcp/\(host.address)/\(host.port)'")
            }
            // A short slice in the suite; Tools/fuzz-remote runs thousands.
            let sessions = Int(ProcessInfo.processInfo.environment["QG_REMOTE_FUZZ_SESSIONS"] ?? "") ?? 60
            for round in 0..<sessions {
                let client = try FuzzClient(address: host.address, port: host.port)
                if round % 2 == 1 { try client.prove(key) }
                for _ in 0..<Int.random(in: 1...6, using: &generator) { client.sendGarbage(using: &generator) }
                client.close()
            }
            #expect(hosts.log(0).contains("refused"))
            // The worker still runs parts.
            let (stats, failure) = try Self.run(try hosts.graph("""
                queues:
                  - {name: src, processor: testsrc, parameters: {count: 200, size: 1000}, pool: {count: 8}}
                  - {name: far, processor: nullsink, threading: remote, host: h1}
                connections: [src -> far]

                """))
            #expect(failure == nil)
            #expect(stats.queues.first { $0.name == "far" }?.popped == 200)
        }
    }
}

/// A worker as the first release was: it proves itself and says `ready`
/// without its wire protocol (and counts the buffers it is sent).
final class OldWorker: UCXNodeDelegate, @unchecked Sendable {
    private var node: UCXNode!
    private let key: SharedKey
    let buffers = Locked(0)

    init(address: String, port: Int, key: SharedKey) throws {
        self.key = key
        node = try UCXNode(delegate: self, tickNanoseconds: 50_000_000, toward: address)
        try node.listen(address: address, port: port)
        node.start(name: "qg-old-worker")
    }

    func stop() { node.stop() }

    func connecting(_ request: UnsafeMutableRawPointer, peer: String) {
        guard let endpoint = node.accept(request) else { return }
        node.send(.challenge, to: endpoint, SharedKey.challenge())
    }

    func arrived(_ id: WireID, from endpoint: Endpoint?, header: UnsafeRawBufferPointer, data: UnsafeMutableRawPointer?, length: Int, rendezvous: Bool) {
        guard let endpoint else { return }
        guard id == .control, header.count == 1 else { return buffers.withLock { $0 += 1 } }
        let bytes = length > 0 ? [UInt8](UnsafeRawBufferPointer(start: data, count: length)) : []
        switch ControlKind(rawValue: header[0]) {
        case .response where bytes.count == 64: node.send(.accepted, to: endpoint, key.proof("qgraph worker", on: Array(bytes[32...])))
        case .run: node.send(.ready, to: endpoint)
        default: break
        }
    }

    func failed(_ endpoint: Endpoint, status: Int32) {}
    func tick(now: UInt64, stalled: UInt64) {}
}

/// A UCX client that speaks the wire protocol badly on purpose.
final class FuzzClient: UCXNodeDelegate, @unchecked Sendable {
    private var node: UCXNode!
    private var endpoint: Endpoint!
    private let challenge = Locked<[UInt8]?>(nil)
    private let accepted = Locked<Bool>(false)
    private let refused = Locked<String?>(nil)

    init(address: String, port: Int) throws {
        node = try UCXNode(delegate: self, tickNanoseconds: 50_000_000, toward: address)
        node.start(name: "qg-fuzz")
        endpoint = try node.connect(address: address, port: port)
    }

    func close() {
        node.post { [self] in node.close(endpoint) }
        usleep(20_000)
        node.stop()
    }

    /// Answers the worker's challenge with the key's proof.
    func prove(_ key: SharedKey) throws {
        for _ in 0..<500 where challenge.withLock({ $0 }) == nil { usleep(10_000) }
        guard let challenge = challenge.withLock({ $0 }) else { throw ProcessorError("no challenge from the worker") }
        node.send(.response, to: endpoint, key.proof("qgraph coordinator", on: challenge) + SharedKey.challenge())
        for _ in 0..<500 where !accepted.withLock({ $0 }) { usleep(10_000) }
    }

    func send(_ kind: ControlKind, _ bytes: Data) { node.send(kind, to: endpoint, [UInt8](bytes)) }

    /// Why the worker refused the session, once it did.
    var refusal: String? {
        for _ in 0..<300 where refused.withLock({ $0 }) == nil { usleep(10_000) }
        return refused.withLock { $0 }
    }

    func sendGarbage<G: RandomNumberGenerator>(using generator: inout G) {
        let id = WireID(rawValue: UInt32.random(in: 1...8, using: &generator))!
        let header = (0..<[0, 1, 2, 63, 64, 65][Int.random(in: 0..<6, using: &generator)]).map { _ in UInt8.random(in: 0...255, using: &generator) }
        var bytes = (0..<Int.random(in: 0...300, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
        if Bool.random(using: &generator) { bytes = Array(#"{"file": "queues: []", "path": "/x", "queue": "q", "capacity": 3, "format": 0, "returnsPayload": true}"#.utf8) }
        header.withUnsafeBytes { h in bytes.withUnsafeBytes { _ = node.send(id, to: endpoint, header: h, bytes: $0) } }
    }

    func arrived(_ id: WireID, from endpoint: Endpoint?, header: UnsafeRawBufferPointer, data: UnsafeMutableRawPointer?, length: Int, rendezvous: Bool) {
        guard id == .control, header.count == 1, !rendezvous else { return }
        let bytes = length > 0 ? [UInt8](UnsafeRawBufferPointer(start: data, count: length)) : []
        switch ControlKind(rawValue: header[0]) {
        case .challenge: challenge.withLock { $0 = bytes }
        case .accepted: accepted.withLock { $0 = true }
        case .refused: refused.withLock { $0 = String(decoding: bytes, as: UTF8.self) }
        default: break
        }
    }

    func failed(_ endpoint: Endpoint, status: Int32) {}
    func connecting(_ request: UnsafeMutableRawPointer, peer: String) {}
    func tick(now: UInt64, stalled: UInt64) {}
}

/// Small buffers batched into one message, read back on the worker's side (no network needed).
@Suite("Remote buffer batches")
struct BufferBatchTests {
    static func read(_ bytes: UnsafeMutableRawPointer?, _ length: Int) -> (entries: [(LinkMessage, [UInt8])], refusal: String?) {
        var entries: [(LinkMessage, [UInt8])] = []
        let refusal = BufferBatch.entries(in: bytes, length: length) { message, payload, size in
            entries.append((message, [UInt8](UnsafeRawBufferPointer(start: payload, count: size))))
            return nil
        }
        return (entries, refusal)
    }

    @Test("each buffer comes out as it went in, fields and payload, until the batch is full")
    func roundTrip() {
        var batch = BufferBatch()
        defer { batch.deallocate() }
        var sent: [(UInt64, [UInt8])] = []
        var sequence: UInt64 = 0
        while true {
            let size = [0, 1, 7, 8, 4096, BufferBatch.largest][Int(sequence) % 6]
            guard batch.fits(size) else { break }
            let payload = (0..<size).map { UInt8(truncatingIfNeeded: $0 &+ Int(sequence)) }
            var message = LinkMessage(kind: .buffer, token: UInt32(sequence))
            (message.size, message.sequence) = (UInt64(size), sequence)
            payload.withUnsafeBytes { batch.append(message, payload: $0.baseAddress, size: size) }
            sent.append((sequence, payload))
            sequence += 1
        }
        #expect(batch.count == sent.count && batch.used <= BufferBatch.capacity && sent.count > 6)
        let (entries, refusal) = Self.read(batch.bytes, batch.used)
        #expect(refusal == nil)
        #expect(entries.map(\.0.sequence) == sent.map(\.0) && entries.map(\.1) == sent.map(\.1))
        #expect(entries.allSatisfy { $0.0.kind == LinkMessage.Kind.buffer.rawValue })
    }

    @Test("a batch cut short, a size past its end or random bytes are refused, never read past the end")
    func malformed() {
        var batch = BufferBatch()
        defer { batch.deallocate() }
        for n in 0..<3 {
            var message = LinkMessage(kind: .buffer, token: UInt32(n))
            message.size = 100
            batch.append(message, payload: [UInt8](repeating: 9, count: 100), size: 100)
        }
        // Cut inside the last entry (before its padding): the first two come out, then the refusal.
        for cut in stride(from: batch.used - 5, to: batch.used - 168, by: -13) {
            let (entries, refusal) = Self.read(batch.bytes, cut)
            #expect(entries.count == 2 && refusal?.contains("malformed batch") == true)
        }
        // A size far past the end.
        batch.bytes.storeBytes(of: UInt64.max, toByteOffset: MemoryLayout<LinkMessage>.offset(of: \.size)!, as: UInt64.self)
        #expect(Self.read(batch.bytes, batch.used).refusal?.contains("malformed batch") == true)
        #expect(Self.read(nil, 0).refusal != nil)
        var generator = SystemRandomNumberGenerator()
        let bytes = UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 8)
        defer { bytes.deallocate() }
        for _ in 0..<500 {
            let length = Int.random(in: 1...4096, using: &generator)
            for i in 0..<length { bytes.storeBytes(of: UInt8.random(in: 0...255, using: &generator), toByteOffset: i, as: UInt8.self) }
            if Bool.random(using: &generator) { bytes.storeBytes(of: UInt64.random(in: 0...5000, using: &generator), toByteOffset: MemoryLayout<LinkMessage>.offset(of: \.size)!, as: UInt64.self) }
            let (entries, refusal) = Self.read(bytes, length)
            #expect(refusal != nil || !entries.isEmpty)
            #expect(entries.reduce(0) { $0 + $1.1.count } <= length)
        }
    }
}

/// `hosts:`, `threading: remote` and `host:` as a graph file says them (no network needed).
@Suite("Remote hosts in graph files")
struct RemoteGraphFileTests {
    static func errors(_ yaml: String) -> [String] {
        do {
            _ = try GraphFile(yaml: yaml, file: "hosts.yaml", registry: everyProcessor)
            return []
        } catch {
            return error.errors.map(\.description)
        }
    }

    static let chain = """
        queues:
          - {name: src, processor: testsrc, parameters: {count: 10}}
          - {name: far, processor: identity, THREADING}
          - {name: sink, processor: nullsink}
        connections: [src -> far, far -> sink]
        """

    @Test("a remote queue's host must be one of the hosts; host only with remote; remote needs a host")
    func placement() {
        let hosts = "hosts:\n  - {name: h1, address: 10.0.0.2, port: 7700}\n"
        #expect(Self.errors(hosts + Self.chain.replacingOccurrences(of: "THREADING", with: "threading: remote, host: h9"))
            == ["hosts.yaml:5:63: error: found host 'h9', expected one of the graph's hosts (h1)"])
        #expect(Self.errors(hosts + Self.chain.replacingOccurrences(of: "THREADING", with: "threading: thread, host: h1"))
            == ["hosts.yaml:5:63: error: found host 'h1' on 'far', whose threading is 'thread', expected host only with 'threading: remote'"])
        #expect(Self.errors(Self.chain.replacingOccurrences(of: "THREADING", with: "threading: remote"))
            == ["hosts.yaml:3:49: error: found threading 'remote' without a host, expected host: NAME (one of the graph's hosts)"])
        #expect(Self.errors(hosts + Self.chain.replacingOccurrences(of: "THREADING", with: "threading: remote, host: h1, restart: always")).isEmpty)
    }

    @Test("hosts: each needs a name, an address literal and a port, once")
    func hostList() {
        let queues = Self.chain.replacingOccurrences(of: "THREADING", with: "threading: thread")
        #expect(Self.errors("hosts:\n  - {name: h1, address: render1.local, port: 7700}\n" + queues)
            == ["hosts.yaml:2:25: error: found 'render1.local', expected an IPv4 or IPv6 address (like 10.0.0.2 or fd00::2; names are not resolved)"])
        #expect(Self.errors("hosts:\n  - {name: h1, address: 10.0.0.2}\n" + queues)
            == ["hosts.yaml:2:5: error: found a host without 'port', expected name, address and port"])
        #expect(Self.errors("hosts:\n  - {name: h1, address: 10.0.0.2, port: 70000}\n" + queues).first?.contains("expected an integer in 1…65535") == true)
        #expect(Self.errors("hosts:\n  - {name: h1, address: 10.0.0.2, port: 1}\n  - {name: h1, address: fd00::2, port: 2}\n" + queues)
            == ["hosts.yaml:3:12: error: found the host 'h1' twice, expected each host once"])
        #expect(Self.errors("hosts: {h1: 10.0.0.2}\n" + queues).first?.contains("expected a list of hosts") == true)
        #expect(Self.errors("hosts:\n  - {name: h1, address: 10.0.0.2, port: 1, silence-ms: 5}\n" + queues).first?.contains("expected an integer in 20…600000") == true)
    }

    @Test("written back out, hosts and host read back the same")
    func writeBack() throws {
        let yaml = "hosts:\n  - {name: h1, address: 'fd00::2', port: 7700, silence-ms: 400}\n"
            + Self.chain.replacingOccurrences(of: "THREADING", with: "threading: remote, host: h1, restart: always")
        let file = try GraphFile(yaml: yaml, file: "hosts.yaml", registry: everyProcessor)
        let again = try GraphFile(yaml: file.yaml(), file: "again.yaml", registry: everyProcessor)
        #expect(again.config.hosts == [RemoteHost(name: "h1", address: "fd00::2", port: 7700, silenceMilliseconds: 400)])
        #expect(again.config.queues[1].host == "h1" && again.config.queues[1].threading == .remote && again.config.queues[1].child.restart == .always)
        #expect(again.yaml().replacingOccurrences(of: "again.yaml", with: "hosts.yaml") == file.yaml())
    }

    @Test("server-hosts: one entry per server, 'local' or a host")
    func serverHosts() throws {
        let hosts = "hosts:\n  - {name: h1, address: 10.0.0.2, port: 7700}\n"
        func compound(_ extra: String, mode: String = "2D") -> String {
            hosts + """
            queues:
              - {name: render, processor: render, parameters: {frames: 2}, threading: thread}
              - {name: julia, processor: julia, buffers: reuse, threading: thread, servers: 2, loadbalancer: {mode: \(mode)}, \(extra)}
              - {name: out, processor: framesink}
            connections: [render -> julia, julia -> out]
            """
        }
        #expect(Self.errors(compound("server-hosts: [local, h1]")).isEmpty)
        #expect(Self.errors(compound("server-hosts: [h1]")).first?.contains("found 1 server hosts for 2 servers, expected one per server ('local' for this machine)") == true)
        #expect(Self.errors(compound("server-hosts: [local, h2]")).first?.contains("found host 'h2', expected 'local' or one of the graph's hosts (h1)") == true)
        #expect(Self.errors(compound("server-hosts: h1")).first?.contains("expected a list with one entry per server") == true)
        let file = try GraphFile(yaml: compound("server-hosts: [local, h1]"), file: "hosts.yaml", registry: everyProcessor)
        #expect(file.config.queues[1].serverHosts == [nil, "h1"])
        #expect(file.yaml().contains(#"server-hosts: ["local", "h1"]"#))
        #expect(throws: ConfigErrors.self) { try file.config.createQueueGraph() }   // no transport
    }

    @Test("a graph with remote queues but no transport is refused when made, naming the queue")
    func noTransport() throws {
        let yaml = "hosts:\n  - {name: h1, address: 10.0.0.2, port: 7700}\n" + Self.chain.replacingOccurrences(of: "THREADING", with: "threading: remote, host: h1")
        let file = try GraphFile(yaml: yaml, file: "hosts.yaml", registry: everyProcessor)
        #expect(throws: ConfigErrors.self) { try file.config.createQueueGraph() }
    }
}
