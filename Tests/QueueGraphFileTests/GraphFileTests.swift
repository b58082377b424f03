import Foundation
import QueueGraphCore
@testable import QueueGraphFile
import QueueGraphRemote
import QueueGraphGL
import QueueGraphMedia
import QueueGraphRender
import QueueGraphRuntime
import Testing

/// The repository root, from this file's path.
/// Every processor, as qgraph composes them: the core's, render's and GL's.
let everyProcessor = {
    var registry = ProcessorRegistry.withRenderAndGL
    registry.registerMedia()
    return registry
}()

let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

@Suite("Graph files")
struct GraphFileTests {
    static let examples = try! FileManager.default.contentsOfDirectory(atPath: repositoryRoot.appendingPathComponent("Graphs").path)
        .filter { $0.hasSuffix(".yaml") }.sorted()

    @Test("Graphs/ holds at least five examples, each with a comment header")
    func examplesExist() throws {
        #expect(Self.examples.count >= 5)
        for name in Self.examples {
            let text = try String(contentsOf: repositoryRoot.appendingPathComponent("Graphs/\(name)"), encoding: .utf8)
            #expect(text.hasPrefix("# "), "\(name) starts without a comment header")
        }
    }

    /// The examples that read the demo's mp4 (with `mediasrc`) read this one instead: a
    /// second of the bouncing ball with a tone, made by QueueGraph itself.
    static let mediaInput: String = {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("qg-example-input-\(UUID().uuidString).mp4").path
        let graph = try! GraphFile(yaml: """
            queues:
              - {name: render, processor: render, parameters: {width: 64, height: 36, fps: 30, frames: 30, latency: 100}, pool: {count: 8}, threading: thread}
              - {name: ball, processor: ball, size: 2, buffers: reuse}
              - {name: tone, processor: tonesrc, parameters: {seconds: 1}, threading: thread}
              - {name: out, processor: mediasink, parameters: {path: '\(path)', preset: ultrafast}, size: 8, threading: thread}
            connections: [render -> ball, ball -> out, tone -> out]
            """, file: "media-input.yaml", registry: everyProcessor).config.createQueueGraph()
        try! graph.start()
        graph.waitUntilFinished(timeoutNanoseconds: 60_000_000_000)
        _ = graph.stop()
        return path
    }()

    @Test("every example validates and runs, ledger balanced", arguments: examples)
    func exampleRuns(name: String) throws {
        let path = repositoryRoot.appendingPathComponent("Graphs/\(name)").path
        var text = try String(contentsOfFile: path, encoding: .utf8)
        // The media examples read the clip made above instead of the demo's
        // mp4, and every example writes into a scratch directory, not over
        // the files the demo and the examples leave in /tmp for the user.
        if text.contains("processor: mediasrc") {
            text = text.replacingOccurrences(of: "path: /tmp/qgraph-shader-preview.mp4", with: "path: \(Self.mediaInput)")
        }
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("qg-example-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        text = text.replacingOccurrences(of: ": /tmp/qgraph-", with: ": \(scratch.path)/qgraph-")
        // An example on other hosts runs on network namespaces (RemoteTests' hosts), 3 at most.
        var hosts: TestHosts?
        if text.contains("threading: remote") {
            let test = try TestHosts(count: 3)
            // The suite runs the examples at once in a debug build, three workers rendering beside them on 2
            // cores: heartbeats can go unheard for longer than the default 150 ms there, so allow a second.
            for (n, host) in test.hosts.enumerated() {
                text = text.replacingOccurrences(of: "address: 10.0.0.\(n + 2), port: 7700", with: "address: \(host.address), port: \(host.port), silence-ms: 1000")
            }
            hosts = test
        }
        var file = try GraphFile(yaml: text, file: path, registry: everyProcessor).childrenRunByQGraph()
        if let hosts { file.config.remoteLinks = RemoteHosts(key: try SharedKey(file: hosts.key.path), file: (text, path)) }
        let graph = try file.config.createQueueGraph()
        try graph.start()
        graph.waitUntilFinished(timeoutNanoseconds: 3_000_000_000)   // bounded: longer examples are drained
        let stats = graph.stop(.drain(timeoutNanoseconds: 5_000_000_000))
        #expect(stats.ledgerProblems().isEmpty, "\(stats.ledgerProblems())")
        #expect(stats.links.allSatisfy { $0.lost == 0 && $0.failure == nil }, "\(stats.links)")
        withExtendedLifetime(hosts) {}
        let delivered = stats.delivered(sinks: file.config.sinkNames)
        if file.queues.contains(where: { $0.processor == "render" }) {
            // A render graph in a debug build may miss every deadline: each frame is then counted as late instead.
            #expect(delivered + stats.dropped(.late) > 0, "\(name) rendered nothing")
        } else {
            #expect(delivered > 0, "\(name) delivered nothing")
        }
    }

    @Test("Graphs/pulled.yaml (frame jobs pulling a node network) writes the same pixels as Graphs/animation.yaml (frames pushed through queues)")
    func pulledMatchesPushed() throws {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("qg-pulled-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        func render(_ name: String, into output: String) throws -> Data {
            // Smaller, fewer and with a second of latency, so that a debug build on a loaded machine misses no frame.
            let text = try String(contentsOf: repositoryRoot.appendingPathComponent("Graphs/\(name)"), encoding: .utf8)
                .replacingOccurrences(of: "path: /tmp/\(output)", with: "path: \(scratch.path)/\(output)")
                .replacingOccurrences(of: "width: 640, height: 360, fps: 60, frames: 600, latency: 2", with: "width: 160, height: 90, fps: 30, frames: 24, latency: 30")
            let file = try GraphFile(yaml: text, file: name, registry: everyProcessor)
            let graph = try file.config.createQueueGraph()
            try graph.start()
            #expect(graph.waitUntilFinished(timeoutNanoseconds: 120_000_000_000))
            let stats = graph.stop()
            #expect(stats.ledgerProblems().isEmpty, "\(stats.ledgerProblems())")
            #expect(stats.delivered(sinks: file.config.sinkNames) == 24, "\(name): every frame in time")
            return try Data(contentsOf: scratch.appendingPathComponent(output))
        }
        let pushed = try render("animation.yaml", into: "qgraph-animation.y4m")
        let pulled = try render("pulled.yaml", into: "qgraph-pulled.y4m")
        #expect(pushed.count > 24 * 160 * 90 * 3 / 2)
        #expect(pushed == pulled)
    }

    @Test("glreadback's I420 frames (the pack conversion on the GL thread) feed mediasink as they are: every frame is encoded")
    func packedFramesIntoEncoder() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("qg-pack-\(UUID().uuidString).mkv").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let file = try GraphFile(yaml: """
            queues:
              - {name: render, processor: render, parameters: {width: 64, height: 36, fps: 30, frames: 20, latency: 60}, pool: {count: 8}, threading: thread}
              - {name: ball, processor: ball, size: 2, buffers: reuse}
              - {name: gl, processor: glupload, parameters: {backend: egl, preview: false}, size: 2, threading: thread}
              - {name: readback, processor: glreadback, parameters: {format: i420}, size: 2, buffers: reuse}
              - {name: out, processor: mediasink, parameters: {path: '\(path)', preset: ultrafast}, size: 4, threading: thread}
            connections: [render -> ball, ball -> gl, gl -> readback, readback -> out]
            """, file: "pack.yaml", registry: everyProcessor)
        let graph = try file.config.createQueueGraph()
        try graph.start()
        #expect(graph.waitUntilFinished(timeoutNanoseconds: 120_000_000_000))
        let stats = graph.stop()
        #expect(stats.ledgerProblems().isEmpty, "\(stats.ledgerProblems())")
        #expect(stats.delivered(sinks: file.config.sinkNames) == 20)
        let probe = Process()
        probe.executableURL = URL(fileURLWithPath: "/usr/bin/ffprobe")
        probe.arguments = ["-v", "error", "-count_frames", "-select_streams", "v", "-show_entries", "stream=nb_read_frames,pix_fmt", "-of", "csv=p=0", path]
        let pipe = Pipe()
        probe.standardOutput = pipe
        try probe.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        probe.waitUntilExit()
        #expect(output.trimmingCharacters(in: .whitespacesAndNewlines) == "yuv420p,20")
    }

    @Test("a sink whose output cannot be opened refuses the start with the reason, and nothing is lost",
          arguments: ["testsrc count=10 ! filesink path=/nonexistent/out.bin",
                      "render frames=10 width=64 height=36 ! y4msink path=/nonexistent/out.y4m",
                      "render frames=10 width=64 height=36 ! pngsink directory=/nonexistent/out.pngs"])
    func unopenableOutput(pipeline: String) throws {
        let graph = try GraphFile(launch: pipeline, registry: everyProcessor).config.createQueueGraph()
        #expect {
            try graph.start()
        } throws: { error in
            "\(error)".contains("could not start: cannot ") && "\(error)".contains("'/nonexistent/out.") && "\(error)".contains("No such file or directory")
        }
        #expect(graph.stop().ledgerProblems().isEmpty)
    }

    /// file, line, column, a fragment of the message.
    static let malformed: [(String, Int, Int, String)] = [
        ("bad-connection-arrow.yaml", 8, 5, "expected a connection like 'a -> b'"),
        ("bad-pad-number.yaml", 8, 5, "found the pad 'x'"),
        ("connection-into-source.yaml", 9, 12, "expected sources to take no input"),
        ("dangling-connection.yaml", 8, 12, "unknown queue 'sinc' (did you mean 'sink'?)"),
        ("default-cycle.yaml", 5, 11, "can fill up and deadlock"),
        ("duplicate-connection.yaml", 9, 5, "twice (first at line 8)"),
        ("duplicate-key.yaml", 8, 5, "found the key 'size' again (first at line 7, column 5)"),
        ("duplicate-key-flow.yaml", 5, 39, "found the key 'count' again (first at line 5, column 18)"),
        ("bytes-into-frames.yaml", 15, 5, "found a link from 'pass' (sends bytes) into 'fractal' (julia takes frames), expected a link that carries frames"),
        ("billion-laughs.yaml", 6, 4, "aliases that expand the file by more than 10000 nodes"),
        ("duplicate-name.yaml", 7, 11, "second queue named 'sink' (the first is at line 5)"),
        ("empty.yaml", 1, 1, "found an empty file"),
        ("missing-processor.yaml", 5, 11, "without 'processor', expected one of audioresample, ball, boxblur"),
        ("no-queues.yaml", 1, 1, "found no 'queues'"),
        ("pad-connected-twice.yaml", 14, 5, "pad 0 of 'split' connected again"),
        ("parameter-bad-choice.yaml", 4, 38, "found 'stripes' for testsrc parameter 'pattern', expected one of zeros, counter or random"),
        ("parameter-missing.yaml", 6, 16, "found no 'path' for filesink"),
        ("parameter-out-of-range.yaml", 4, 35, "found '-5' for testsrc parameter 'rate', expected a number in 0…10000000"),
        ("parameter-wrong-type.yaml", 4, 25, "found 'many' for testsrc parameter 'count', expected an integer ≥ 0"),
        ("pool-smaller-than-buffers.yaml", 5, 11, "expected at least its testsrc size 8192"),
        ("pool-without-provider.yaml", 7, 11, "expected a pool only with 'buffers: provider'"),
        ("queue-without-name.yaml", 2, 5, "found a queue without 'name'"),
        ("queues-not-a-list.yaml", 1, 9, "found 'src', expected a list of queues"),
        ("restart-without-process.yaml", 8, 14, "found restart on 'sink', whose threading is 'thread', expected restart only with 'threading: child'"),
        ("process-fed-from-outside.yaml", 14, 5, "found a connection from 'b' into 'sink', which runs in the child process of 'effect'"),
        ("process-makes-buffers.yaml", 13, 14, "found buffers 'upstream' on 'scale', which runs in the child process of 'effect' where no buffers can be made"),
        ("red-parameters-without-red.yaml", 8, 10, "RED parameters on a 'taildrop' queue"),
        ("red-thresholds-reversed.yaml", 9, 16, "found RED min 20 ≥ max 10, expected min < max"),
        ("servers-not-splittable.yaml", 7, 14, "found servers: 4 on 'sink', whose processor 'nullsink' cannot split its work, expected 1 (processors that can: discs, hotspot, julia)"),
        ("servers-zero.yaml", 8, 14, "found '0', expected an integer in 1…64"),
        ("loadbalancer-unknown-mode.yaml", 9, 26, "found 'diagonal', expected one of 2D, vertical, horizontal or db"),
        ("loadbalancer-mode-unsupported.yaml", 9, 26, "found mode 'db' for 'julia', expected one of 2D, vertical or horizontal"),
        ("loadbalancer-weights-count.yaml", 9, 29, "found 3 weights, expected one per server (2)"),
        ("loadbalancer-unknown-name.yaml", 11, 19, "found the load balancer 'tile' (did you mean 'tiles'?), expected 'tiles' (defined under 'loadbalancers') or a mapping"),
        ("loadbalancer-one-server.yaml", 8, 19, "found a load balancer on 'work', which has 1 server, expected one only with 'servers' of 2 or more"),
        ("loadbalancer-boundary-scalar.yaml", 9, 40, "found '8', expected the pixel alignment as a list [x, y] of whole pixels"),
        ("loadbalancer-damping-range.yaml", 9, 29, "found '1.5', expected a number in 0…1"),
        ("gl-stage-off-owner-thread.yaml", 7, 16, "found glshader on 'grade', which runs on the thread of 'render' (render), expected it downstream of a glupload queue"),
        ("gl-upload-without-thread.yaml", 7, 16, "found glupload on 'gl' with 'threading: none', expected 'threading: thread'"),
        ("shader-file-missing.yaml", 7, 24, "found 'shaders/no-such.frag' for glshader parameter 'file', which does not exist or cannot be read"),
        ("sink-with-output.yaml", 11, 5, "found 1 out pad on 'sink', expected 0 for nullsink"),
        ("size-is-a-mapping.yaml", 7, 11, "found a mapping, expected an integer in 1…1000000"),
        ("size-not-a-number.yaml", 7, 11, "found 'big', expected an integer in 1…1000000"),
        ("size-zero.yaml", 7, 11, "found '0', expected an integer in 1…1000000"),
        ("source-not-connected.yaml", 2, 11, "found 0 out pads on 'src', expected 1 for testsrc"),
        ("source-with-forward-buffers.yaml", 5, 14, "expected provider, upstream or downstream"),
        ("syntax-indentation.yaml", 4, 4, "YAML syntax"),
        ("syntax-unclosed-flow.yaml", 5, 9, "YAML syntax: did not find expected ',' or '}'"),
        ("top-level-list.yaml", 1, 1, "found a list, expected the graph as a mapping"),
        ("unknown-buffers.yaml", 7, 14, "found 'pool', expected one of forward, reuse, upstream, downstream or provider"),
        ("unknown-discipline.yaml", 7, 17, "found 'random', expected one of fifo, lifo or prio"),
        ("unknown-management.yaml", 7, 17, "found 'tail-drop' (did you mean 'taildrop'?), expected one of default, taildrop, headdrop or red"),
        ("unknown-parameter.yaml", 4, 29, "unknown key 'colour' in parameters of testsrc"),
        ("unknown-processor.yaml", 6, 16, "unknown processor 'nulsink' (did you mean 'nullsink'?)"),
        ("unknown-queue-key.yaml", 7, 5, "unknown key 'sizee' in a queue (did you mean 'size'?)"),
        ("unknown-sync.yaml", 7, 11, "found 'yes', expected one of none, ack or nak"),
        ("unknown-threading.yaml", 7, 16, "found 'threads' (did you mean 'thread'?)"),
        ("unknown-top-key.yaml", 1, 1, "unknown key 'queuez' in the graph (did you mean 'queues'?)"),
        ("network-fan-out.yaml", 5, 16, "network 'scene': found 'plasma' feeding both 'julia' and 'mix', expected each node to feed one"),
        ("network-two-exits.yaml", 6, 16, "network 'scene': found 2 nodes that feed no other ('julia', 'blur'), expected one exit node"),
        ("network-sink-node.yaml", 6, 32, "found the sink 'y4msink' as a network node, expected a generator, a filter or 'composite'"),
        ("network-unknown-name.yaml", 14, 14, "found the network 'scne' (did you mean 'scene'?), expected 'scene' (defined under 'networks')"),
        ("network-unknown-node.yaml", 9, 9, "found the unknown node 'plasm' (did you mean 'plasma'?), expected one of julia, plasma or mix"),
        ("network-on-non-pull.yaml", 14, 14, "found 'network' on 'scene', whose processor 'boxblur' pulls none, expected it only with 'pull'"),
        ("network-compositor-one-input.yaml", 6, 16, "found 1 input into the compositor 'mix', expected two (layer 0, then layer 1)"),
        ("network-dynamic-resolution.yaml", 4, 16, "found 'resolution: dynamic' on 'julia', expected full resolution in a network"),
        ("dynamic-resolution-compound.yaml", 7, 14, "found servers: 2 on 'julia', whose 'resolution: dynamic' holds the frame time of one render node, expected 'servers: 1' with it"),
        ("pull-without-network.yaml", 13, 16, "found the processor 'pull' on 'scene' without 'network', expected 'network: NAME' naming 'scene'"),
    ]

    @Test("each malformed file gives its error at its line and column", arguments: malformed)
    func malformedFile(name: String, line: Int, column: Int, fragment: String) {
        let path = repositoryRoot.appendingPathComponent("Tests/QueueGraphFileTests/Malformed/\(name)").path
        do {
            _ = try GraphFile.load(path: path, registry: everyProcessor)
            Issue.record("\(name) loaded without errors")
        } catch {
            let first = error.errors.first!
            #expect(first.location == SourceLocation(file: path, line: line, column: column), "\(error)")
            #expect(first.message.contains(fragment), "\(first.message)")
            #expect(first.description.hasPrefix("\(path):\(line):\(column): error: "))
        }
    }

    @Test("aliases within the budget are expanded where they are named")
    func aliasesWithinBudget() throws {
        let text = """
        queues:
          - {name: a, processor: testsrc, parameters: &p {count: 7, size: 96}}
          - {name: b, processor: testsrc, parameters: *p}
          - {name: sink, processor: nullsink, pads: 0}
        connections: [a -> sink, b -> sink]
        """
        let file = try GraphFile(yaml: text, file: "aliases.yaml", registry: everyProcessor)
        #expect(file.queues.map { $0.parameters.values["count"] } == [.integer(7), .integer(7), nil])
        #expect(file.queues[1].parameters.values["size"] == .integer(96))
    }

    @Test("every malformed fixture is in the table, and there are at least 25")
    func fixturesCovered() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: repositoryRoot.appendingPathComponent("Tests/QueueGraphFileTests/Malformed").path)
            .filter { $0.hasSuffix(".yaml") }
        #expect(files.count >= 25)
        #expect(Set(files) == Set(Self.malformed.map(\.0) + ["several-errors.yaml"]))
    }

    @Test("several errors in one file are all reported, in file order")
    func severalErrors() {
        let path = repositoryRoot.appendingPathComponent("Tests/QueueGraphFileTests/Malformed/several-errors.yaml").path
        #expect {
            _ = try GraphFile.load(path: path, registry: everyProcessor)
        } throws: { error in
            let errors = (error as! GraphFileErrors).errors
            return errors.map { [$0.location.line, $0.location.column] } == [[4, 25], [7, 17], [8, 11]]
        }
    }

    @Test("a file declares every policy, size, bound and pool it names")
    func policiesReachTheConfig() throws {
        let yaml = """
            queues:
              - name: src
                processor: testsrc
                parameters: {count: 5, size: 100}
                pool: {count: 9, buffer-size: 128}
              - name: sink
                processor: nullsink
                size: 7
                management: red
                red: {min: 1, max: 5, max-probability: 0.5, weight: 0.25, seed: 3}
                discipline: prio
                sync: nak
                threading: thread
                byte-bound: 4096
            connections:
              - {from: src, pad: 0, to: sink}
            residency-sample-interval: 4
            """
        let file = try GraphFile(yaml: yaml, file: "inline.yaml", registry: everyProcessor)
        let sink = file.config.queues[1]
        #expect(sink.size == 7)
        #expect(sink.management == .red(RED(minThreshold: 1, maxThreshold: 5, maxProbability: 0.5, weight: 0.25, seed: 3)))
        #expect(sink.discipline == .prio && sink.sync == .nak && sink.threading == .thread && sink.byteBound == 4096)
        #expect(sink.outPads == 0)
        #expect(file.config.queues[0].buffers == .provider)
        #expect(file.queues[0].pool! == (9, 128))
        #expect(file.config.residencySampleInterval == 4)
        #expect(file.config.connections == [Connection(from: "src", to: "sink")])
    }

    @Test("a load balancer defined once under 'loadbalancers' serves the compounds that name it; Equalizer's mode spellings are read")
    func namedLoadBalancers() throws {
        let yaml = """
            loadbalancers:
              - {name: columns, mode: VERTICAL, damping: 0.25, boundary: [16, 8]}
              - {name: data, split: DB}
            queues:
              - {name: render, processor: render, parameters: {frames: 2}}
              - {name: a, processor: julia, buffers: reuse, servers: 2, loadbalancer: columns}
              - {name: b, processor: julia, buffers: reuse, servers: 3, loadbalancer: columns}
              - {name: c, processor: discs, buffers: reuse, servers: 2, loadbalancer: data}
              - {name: d, processor: julia, buffers: reuse, servers: 2, loadbalancer: {mode: HORIZONTAL}}
              - {name: sink, processor: framesink}
            connections: [render -> a, a -> b, b -> c, c -> d, d -> sink]
            """
        let queues = try GraphFile(yaml: yaml, file: "named.yaml", registry: everyProcessor).config.queues
        var columns = LoadBalancerConfig(mode: .vertical)
        (columns.damping, columns.boundary) = (0.25, .init(x: 16, y: 8))
        #expect(queues[1].loadBalancer == columns && queues[2].loadBalancer == columns)
        #expect(queues[3].loadBalancer.mode == .db && queues[4].loadBalancer.mode == .horizontal)
        #expect {
            _ = try GraphFile(yaml: yaml.replacingOccurrences(of: "split: DB}", with: "split: DB, weights: [1, 1, 1]}"), file: "named.yaml", registry: everyProcessor)
        } throws: { error in
            (error as! GraphFileErrors).errors.map(\.description) == ["named.yaml:8:75: error: load balancer 'data': found 3 weights, expected one per server (2)"]
        }
    }

    @Test("an application registers its own discipline and management policy and names them in a file")
    func customQueueHandlers() throws {
        final class Newest: QueueDisciplineHandler {
            var items: [WaitingBuffer] = []
            var count: Int { items.count }
            func insert(_ item: WaitingBuffer) { items.append(item) }
            func next() -> WaitingBuffer? { items.last }
            func removeNext() -> WaitingBuffer? { items.popLast() }
            func removeLeastWanted() -> WaitingBuffer? { items.isEmpty ? nil : items.removeFirst() }
            func removeAll() -> [WaitingBuffer] { defer { items = [] }; return items }
        }
        final class DropEverySecond: QueueManagementHandler {
            var seen = 0
            func admit(_ buffer: Buffer, depth: Int, bytes: Int, size: Int) -> ManagementDecision {
                seen += 1
                return seen % 2 == 0 ? .dropArrival : depth < size ? .accept : .refuse
            }
        }
        var registry = everyProcessor
        registry.register(discipline: CustomDiscipline(name: "newest") { Newest() })
        registry.register(management: CustomManagement(name: "every-second") { DropEverySecond() })
        let yaml = """
            queues:
              - {name: src, processor: testsrc, parameters: {count: 10, size: 8}}
              - {name: sink, processor: nullsink, management: every-second, discipline: newest, size: 4}
            connections: [src -> sink]
            """
        let file = try GraphFile(yaml: yaml, file: "handlers.yaml", registry: registry)
        #expect(file.config.queues[1].management.name == "every-second" && file.config.queues[1].discipline.name == "newest")
        let graph = try file.config.createSteppedGraph()
        graph.run()
        let sink = graph.statistics()[queue: "sink"]!
        #expect(sink.arrived == 10 && sink.dropped[.policy] == 5 && sink.popped == 5 && graph.statistics().ledgerProblems().isEmpty)
        #expect {
            _ = try GraphFile(yaml: yaml.replacingOccurrences(of: "discipline: newest", with: "discipline: newst"), file: "handlers.yaml", registry: registry)
        } throws: { error in
            (error as! GraphFileErrors).errors.map(\.message) == ["found 'newst' (did you mean 'newest'?), expected one of fifo, lifo, prio or newest"]
        }
    }

    @Test("an application registers its own processor and uses it from a file")
    func customProcessor() throws {
        final class Doubler: BufferProcessor {
            let factor: Int
            init(factor: Int) { self.factor = factor }
            func process(_ buffer: Buffer, context: ProcessContext) -> ProcessResult {
                buffer.priority = buffer.priority * factor
                if context.sendTo(0, buffer) == .full { context.doneBuffer(buffer) }
                return .ok
            }
        }
        var registry = ProcessorRegistry.builtIn
        registry.register(ProcessorSpec(name: "scale", summary: "multiplies priorities",
                                        parameters: [ParameterSpec("factor", .integer(1...10), default: .integer(2), "the factor")],
                                        outputs: 1...1, make: { Doubler(factor: $0.integer("factor")) }))
        let yaml = """
            queues:
              - {name: src, processor: testsrc, parameters: {count: 100, priorities: 3}}
              - {name: mid, processor: scale, parameters: {factor: 3}}
              - {name: sink, processor: nullsink}
            connections: [src -> mid, mid -> sink]
            """
        let graph = try GraphFile(yaml: yaml, file: "custom.yaml", registry: registry).config.createSteppedGraph()
        graph.run()
        #expect(graph.statistics()[queue: "sink"]!.popped == 100)
        #expect(throws: GraphFileErrors.self) {
            try GraphFile(yaml: yaml.replacingOccurrences(of: "factor: 3", with: "factor: 30"), file: "custom.yaml", registry: registry)
        }
    }

    @Test("launch lines build the same graphs; queue sets the next element's queue and a thread boundary")
    func launchLine() throws {
        let file = try GraphFile(launch: "testsrc count=100 size=64 ! queue size=4 management=headdrop ! nullsink", registry: everyProcessor)
        #expect(file.config.queues.map(\.name) == ["testsrc", "nullsink"])
        // `size` on testsrc is its parameter (bytes per buffer): queue fields go on a `queue` element only.
        #expect(file.queues[0].parameters.values["size"] == .integer(64))
        #expect(file.config.queues[0].size == (try GraphFile(launch: "testsrc count=100 ! nullsink", registry: everyProcessor)).config.queues[0].size)
        let sink = file.config.queues[1]
        #expect(sink.size == 4 && sink.management == .headdrop && sink.threading == .thread)
        #expect(file.config.connections == [Connection(from: "testsrc", to: "nullsink")])

        let fan = try GraphFile(launch: "testsrc count=10 ! tee name=t ! nullsink t. ! queue ! nullsink", registry: everyProcessor)
        #expect(fan.config.queues.map(\.name) == ["testsrc", "t", "nullsink", "nullsink-2"])
        #expect(fan.config.connections == [Connection(from: "testsrc", to: "t"), Connection(from: "t", to: "nullsink"),
                                           Connection(from: "t", pad: 1, to: "nullsink-2")])
        let graph = try fan.config.createSteppedGraph()
        graph.run()
        #expect(graph.statistics()[queue: "nullsink-2"]!.popped == 10)
    }

    @Test("launch errors point at the column")
    func launchErrors() {
        #expect {
            _ = try GraphFile(launch: "testsrc count=10 ! queue management=tail-drop ! nullsink", registry: everyProcessor)
        } throws: { error in
            let first = (error as! GraphFileErrors).errors[0]
            return first.location == SourceLocation(file: "<launch>", line: 1, column: 37) && first.message.contains("did you mean 'taildrop'")
        }
        #expect {
            _ = try GraphFile(launch: "testsrc count=10 ! nulsink", registry: everyProcessor)
        } throws: { error in
            (error as! GraphFileErrors).errors[0].location.column == 20
        }
        #expect(throws: GraphFileErrors.self) { try GraphFile(launch: "testsrc ! ", registry: everyProcessor) }
        #expect {
            _ = try GraphFile(launch: "testsrc count=10 ! nullsink management=headdrop", registry: everyProcessor)
        } throws: { error in
            let first = (error as! GraphFileErrors).errors[0]
            return first.location.column == 29 && first.message.contains("found the queue field 'management' on nullsink, expected it on a 'queue' element")
        }
        #expect {
            _ = try GraphFile(launch: "testsrc count=10 ! queue count=4 ! nullsink", registry: everyProcessor)
        } throws: { error in
            (error as! GraphFileErrors).errors[0].message.contains("found the property 'count' on a queue")
        }
    }

    @Test("docs/graph-format.md lists exactly the keys a queue may have, and reserves none")
    func documentedQueueKeys() throws {
        let doc = try String(contentsOf: repositoryRoot.appendingPathComponent("docs/graph-format.md"), encoding: .utf8)
        let section = doc.components(separatedBy: "### A queue\n")[1].components(separatedBy: "\n#")[0]
        let rows = section.split(separator: "\n").filter { $0.hasPrefix("| `") }
        let keys = rows.map { $0.dropFirst(3).prefix { $0 != "`" } }.map(String.init)
        #expect(Set(keys) == Set(GraphChecker.queueKeys))
        #expect(!section.contains("Reserved"), "a key the checker does not reserve")
        #expect {
            _ = try GraphFile(yaml: "queues:\n  - {name: a, processor: testsrc, gl: true}\n", file: "gl.yaml", registry: everyProcessor)
        } throws: { error in
            (error as! GraphFileErrors).errors.contains { $0.message.contains("found the unknown key 'gl' in a queue") }
        }
    }

    @Test("the shipped JSON Schema is the one the registry generates")
    func schemaUpToDate() throws {
        let shipped = try String(contentsOf: repositoryRoot.appendingPathComponent("docs/graph.schema.json"), encoding: .utf8)
        #expect(shipped == everyProcessor.jsonSchema(), "regenerate with: swift run qgraph schema > docs/graph.schema.json")
    }

    @Test("inspect and dot describe the resolved graph")
    func descriptions() throws {
        let file = try GraphFile.load(path: repositoryRoot.appendingPathComponent("Graphs/fan-out-fan-in.yaml").path, registry: everyProcessor)
        let text = file.inspection()
        #expect(text.contains("4 threads"))
        #expect(text.contains("merge: nullsink on thread 3"))
        // The default pool fills every queue downstream of the source: split, left, right (64 each) + merge 128 + 4.
        #expect(text.contains("source: 324 buffers × 64 bytes"))
        #expect(text.contains("provider: its own pool of"))
        let dot = file.dot()
        #expect(dot.hasPrefix("digraph"))
        #expect(dot.contains("\"split\" -> \"right\" [label=\"1\"]"))
    }
}
