import Foundation
import Hummingbird
import Logging
import QueueGraphControl
import QueueGraphCore
import QueueGraphRuntime

/// A running graph's live page (docs/control.md): `/` is the page, the
/// graph as a Graphviz picture in SVG with each queue's fill, rates and
/// drops updating live and the statistics table beneath; `/graph.svg` the
/// picture; `/events` the statistics as server-sent events, twice a second;
/// `/stats` one snapshot. Built on Hummingbird, on its own event loop
/// threads: a page costs the graph a statistics snapshot per event.
///
/// Threading: `start` and `stop` from any thread, once each.
public final class LivePage: @unchecked Sendable {
    public let graph: QueueGraph
    public let name: String
    public let host: String
    /// The port asked for; 0 lets the system choose (`port` says which, once started).
    public let requestedPort: Int
    private let bound = Locked<Int?>(nil)
    private var task: Task<Void, any Error>?
    private let picture = Locked<(key: String, svg: String)?>(nil)

    /// Events per `/events` stream (one every 500 ms) before it ends and the page reconnects.
    static let eventsPerStream = 6

    /// `host` is what the server binds to: loopback unless told otherwise.
    public init(graph: QueueGraph, name: String, host: String = "127.0.0.1", port: Int) {
        (self.graph, self.name, self.host, self.requestedPort) = (graph, name, host, port)
    }

    /// The port it listens on, once started.
    public var port: Int? { bound.withLock { $0 } }

    /// Starts serving; returns once the server listens (or throws why it cannot).
    public func start() throws {
        let router = Router()
        router.get("/") { [self] _, _ in
            // Two snapshots a quarter of a second apart: the page shows rates as it loads.
            let earlier = snapshot()
            try await Task.sleep(for: .milliseconds(250))
            return Self.response(Self.page(name: name, svg: svg(), snapshots: [earlier, snapshot()]), type: "text/html; charset=utf-8")
        }
        router.get("graph.svg") { [self] _, _ in Self.response(svg(), type: "image/svg+xml") }
        router.get("stats") { [self] _, _ in Self.response(snapshot(), type: "application/json") }
        router.get("events") { [self] _, _ in
            // A stream lasts a few seconds, then ends, and the browser reconnects at
            // once (`retry`): no connection outlives a client that went away for long.
            Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"], body: .init { writer in
                try await writer.write(ByteBuffer(string: "retry: 100\n\n"))
                for _ in 0..<Self.eventsPerStream where !Task.isCancelled {
                    try await writer.write(ByteBuffer(string: "data: \(self.snapshot())\n\n"))
                    try await Task.sleep(for: .milliseconds(500))
                }
                try await writer.finish(nil)
            })
        }
        let listening = WakeEvent()
        let failure = Locked<String?>(nil)
        var logger = Logger(label: "qgraph-live-page")
        logger.logLevel = .warning   // the server's own lines would break the progress line
        let app = Application(router: router, configuration: .init(address: .hostname(host, port: requestedPort), serverName: "qgraph"),
                              onServerRunning: { [bound] channel in
                                  bound.withLock { $0 = channel.localAddress?.port ?? -1 }
                                  listening.notify()
                              }, logger: logger)
        task = Task.detached {
            do { try await app.runService(gracefulShutdownSignals: []) } catch {
                failure.withLock { $0 = "\(error)" }
                listening.notify()
                throw error
            }
        }
        listening.wait(timeoutNanoseconds: 10_000_000_000) { self.port != nil || failure.withLock { $0 != nil } }
        if let reason = failure.withLock({ $0 }) { throw ControlError("cannot serve on \(host):\(requestedPort): \(reason)") }
        guard port != nil else { throw ControlError("cannot serve on \(host):\(requestedPort): the server did not start within 10 s") }
    }

    private static func response(_ text: String, type: String) -> Response {
        Response(status: .ok, headers: [.contentType: type], body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    /// Stops serving.
    public func stop() { task?.cancel() }

    deinit { stop() }

    /// The statistics now, with what the page draws them against: each
    /// queue's size, and a key that changes with the graph's shape.
    func snapshot() -> String {
        let (queues, connections) = graph.engine.currentGraph()
        var object = graph.statistics().jsonObject
        object["graph"] = name
        object["sizes"] = Dictionary(queues.map { ($0.name, $0.size) }, uniquingKeysWith: { a, _ in a })
        object["shape"] = shapeKey(queues: queues.map(\.name), connections: connections)
        object["time"] = Date().timeIntervalSince1970
        return ControlProtocol.json(object)
    }

    private func shapeKey(queues: [String], connections: [Connection]) -> String {
        (queues + connections.map { "\($0.from):\($0.pad)>\($0.to)" }).joined(separator: " ")
    }

    /// The graph now as SVG, drawn by Graphviz's `dot` (again only when its shape changed).
    func svg() -> String {
        let (queues, connections) = graph.engine.currentGraph()
        let key = shapeKey(queues: queues.map(\.name), connections: connections)
        if let cached = picture.withLock({ $0 }), cached.key == key { return cached.svg }
        let svg = Self.render(dot: Self.dot(name: name, queues: queues, connections: connections))
        picture.withLock { $0 = (key, svg) }
        return svg
    }

    /// DOT with one node per queue (its name, and two lines the page fills
    /// in, their room held by placeholders) and one edge per connection.
    static func dot(name: String, queues: [QueueConfig], connections: [Connection]) -> String {
        var text = "digraph \"\(name)\" {\n  rankdir=LR;\n  node [shape=box, style=\"rounded,filled\", fillcolor=\"#e9ecef\", fontname=\"Helvetica\"];\n"
        for q in queues { text += "  \"\(q.name)\" [id=\"queue-\(q.name)\", label=\"\(q.name)\\n8888/8888 · 8888/s\\n88888 dropped\"];\n" }
        for c in connections { text += "  \"\(c.from)\" -> \"\(c.to)\";\n" }
        return text + "}\n"
    }

    /// `dot -Tsvg`, or an SVG that says why there is no picture.
    static func render(dot: String) -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/dot")
        process.arguments = ["-Tsvg"]
        let (input, output) = (Pipe(), Pipe())
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        do {
            try process.run()
            input.fileHandleForWriting.write(Data(dot.utf8))
            try input.fileHandleForWriting.close()
            let svg = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            if process.terminationStatus == 0 { return svg }
        } catch {}
        return #"<svg xmlns="http://www.w3.org/2000/svg" width="600" height="40"><text x="10" y="25">no picture: Graphviz's dot (/usr/bin/dot) did not run</text></svg>"#
    }
}
