import Foundation
import QueueGraphCore
import QueueGraphRuntime
#if canImport(Glibc)
import Glibc
#endif

/// A running graph's control endpoint (docs/control.md): a Unix stream
/// socket in the `ControlDirectory` (mode 0600, in a 0700 directory, so
/// nobody but its user can connect) that answers the `ControlProtocol`.
///
/// One thread serves every client with `poll`, never the graph's threads:
/// with nobody connected it sleeps in `poll` and costs the graph nothing.
/// A request is answered from a snapshot (`QueueGraph.statistics()`), so a
/// client cannot slow the graph down. Bad input gets an error line: a
/// request that is not JSON or names no known command keeps its
/// connection; a line over `ControlProtocol.maxLineBytes`, a client that
/// sends no complete request within `timeout`, one more than
/// `maxClients`, or one that reads none of its answers is told why and
/// closed.
///
/// Threading: `open` and `close` from any thread, once each.
public final class ControlEndpoint: @unchecked Sendable {
    public let graph: QueueGraph
    public let name: String
    /// Seconds a client has for its first request, and to finish a request it began.
    public let timeout: Double
    public let maxClients: Int
    /// The socket's path, once open.
    public private(set) var path = ""
    private let details: [String: [String: Any]]
    /// Reads the queues of a segment to splice in from a launch line
    /// (`GraphFile.segment`), for `replace` and `insert`; nil refuses them.
    private let segment: (@Sendable (String) throws -> [QueueConfig])?
    private let started = Date().timeIntervalSince1970
    private var listener: Int32 = -1
    private var wakePipe: (read: Int32, write: Int32) = (-1, -1)
    private var thread: pthread_t?
    private lazy var metrics = ControlMetrics(graph: name)

    /// `details`: what the application knows of each queue beyond its
    /// config, by queue name, added to `dump` (a graph file's processor
    /// and parameters).
    /// `segment` reads a launch line into queues for `replace` and `insert`
    /// (nil: the endpoint refuses them).
    public init(graph: QueueGraph, name: String, details: [String: [String: Any]] = [:],
                segment: (@Sendable (String) throws -> [QueueConfig])? = nil, timeout: Double = 10, maxClients: Int = 64) {
        self.segment = segment
        precondition(timeout > 0 && maxClients > 0, "a control endpoint needs a timeout and room for a client")
        self.graph = graph
        self.name = name
        self.details = details
        self.timeout = timeout
        self.maxClients = maxClients
    }

    deinit { close() }

    /// Makes the socket and starts serving.
    public func open() throws(ControlError) {
        precondition(thread == nil, "a control endpoint opens once")
        let directory = try ControlDirectory.make()
        path = ControlDirectory.socketPath(in: directory, graph: name)
        unlink(path)
        listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard listener >= 0 else { throw ControlError("cannot make a socket: \(String(cString: strerror(errno)))") }
        var address = try unixAddress(path)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0, chmod(path, 0o600) == 0, listen(listener, 128) == 0 else {
            let reason = String(cString: strerror(errno))
            Glibc.close(listener)
            listener = -1
            throw ControlError("cannot listen on \(path): \(reason)")
        }
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw ControlError("cannot make a pipe: \(String(cString: strerror(errno)))") }
        for fd in fds { nonBlocking(fd) }
        wakePipe = (fds[0], fds[1])
        thread = spawnThread(name: "qg-control") { [self] in serve() }
    }

    /// Stops serving, closes every connection and removes the socket.
    public func close() {
        guard let thread else { return }
        var byte: UInt8 = 1
        _ = write(wakePipe.write, &byte, 1)
        pthread_join(thread, nil)
        self.thread = nil
        for fd in [listener, wakePipe.read, wakePipe.write] where fd >= 0 { Glibc.close(fd) }
        unlink(path)
    }

    // MARK: The serving thread

    private final class Client {
        let fd: Int32
        var input: [UInt8] = []
        var output: [UInt8] = []
        /// When it must have sent a complete request (nil: it has, and waits idle).
        var deadline: Double?
        var closing = false

        init(fd: Int32, deadline: Double) { (self.fd, self.deadline) = (fd, deadline) }
    }

    /// Output a client may leave unread before it is closed.
    private static let maxPendingOutput = 16 << 20

    private func serve() {
        var clients: [Client] = []
        while true {
            let now = Date().timeIntervalSince1970
            for client in clients where !client.closing {
                if let deadline = client.deadline, now >= deadline {
                    client.output += Array(ControlProtocol.failure(id: nil, .init("timeout", "found no complete request within \(String(format: "%g", timeout)) s, expected one JSON object per line")).utf8)
                    client.closing = true
                }
            }
            clients.removeAll { client in
                guard client.closing else { return false }
                flush(client)
                Glibc.close(client.fd)
                return true
            }
            var polled = [pollfd(fd: listener, events: Int16(POLLIN), revents: 0), pollfd(fd: wakePipe.read, events: Int16(POLLIN), revents: 0)]
            polled += clients.map { pollfd(fd: $0.fd, events: Int16(POLLIN) | ($0.output.isEmpty ? 0 : Int16(POLLOUT)), revents: 0) }
            let nearest = clients.compactMap(\.deadline).min().map { max(0, $0 - now) } ?? 1
            let ready = poll(&polled, nfds_t(polled.count), Int32(min(nearest, 1) * 1000) + 1)
            if ready < 0 && errno != EINTR { break }
            if polled[1].revents != 0 { break }   // close()
            if polled[0].revents & Int16(POLLIN) != 0 { accept(into: &clients) }
            for (client, entry) in zip(clients, polled.dropFirst(2)) {
                if entry.revents & Int16(POLLIN) != 0 { read(client) }
                if entry.revents & Int16(POLLHUP | POLLERR | POLLNVAL) != 0 && entry.revents & Int16(POLLIN) == 0 { client.closing = true }
                if !client.output.isEmpty { flush(client) }
            }
        }
        for client in clients { Glibc.close(client.fd) }
    }

    private func accept(into clients: inout [Client]) {
        while true {
            let fd = Glibc.accept(listener, nil, nil)
            guard fd >= 0 else { return }
            nonBlocking(fd)
            let client = Client(fd: fd, deadline: Date().timeIntervalSince1970 + timeout)
            if clients.count >= maxClients {
                client.output = Array(ControlProtocol.failure(id: nil, .init("busy", "found \(maxClients) clients connected, expected fewer: try again")).utf8)
                flush(client)
                Glibc.close(fd)
                continue
            }
            client.output = Array(ControlProtocol.success(id: nil, result: hello).utf8)
            clients.append(client)
        }
    }

    private var hello: [String: Any] { ControlProtocol.hello(graph: name, pid: getpid(), started: started) }

    /// Reads what the client sent and answers each complete line.
    private func read(_ client: Client) {
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        let count = recv(client.fd, &chunk, chunk.count, 0)
        if count == 0 || (count < 0 && errno != EAGAIN && errno != EINTR) {
            client.closing = true
            return
        }
        guard count > 0 else { return }
        client.input += chunk[0..<count]
        while let newline = client.input.firstIndex(of: UInt8(ascii: "\n")) {
            var line = client.input[..<newline]
            if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
            if !line.allSatisfy({ $0 == UInt8(ascii: " ") }) { client.output += Array(answer(line).utf8) }
            client.input.removeSubrange(...newline)
            client.deadline = nil
        }
        if client.input.count > ControlProtocol.maxLineBytes {
            client.output += Array(ControlProtocol.failure(id: nil, .malformed("found a request line over \(ControlProtocol.maxLineBytes) bytes, expected a shorter one")).utf8)
            client.closing = true
        } else if !client.input.isEmpty && client.deadline == nil {
            client.deadline = Date().timeIntervalSince1970 + timeout
        }
        if client.output.count > Self.maxPendingOutput { client.closing = true }   // it reads none of its answers
    }

    private func flush(_ client: Client) {
        while !client.output.isEmpty {
            let sent = client.output.withUnsafeBytes { send(client.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard sent > 0 else {
                if sent < 0 && errno != EAGAIN && errno != EINTR { client.output.removeAll(); client.closing = true }
                return
            }
            client.output.removeFirst(sent)
        }
    }

    /// The response line to one request line.
    func answer(_ line: some Collection<UInt8>) -> String {
        switch ControlProtocol.parse(line) {
        case .failure(let failure):
            return ControlProtocol.failure(id: nil, failure)
        case .success(let request):
            switch respond(to: request) {
            case .success(let result): return ControlProtocol.success(id: request.id, result: result)
            case .failure(let failure): return ControlProtocol.failure(id: request.id, failure)
            }
        }
    }

    private func respond(to request: ControlProtocol.Request) -> Result<Any, ControlProtocol.Failure> {
        switch request.command {
        case "hello": return .success(hello)
        case "stats": return .success(graph.statistics().jsonObject)
        case "dump": return .success(dump())
        case "metrics": return .success(metrics.text(graph.statistics()))
        case "set", "pause", "resume", "queue", "replace", "insert", "remove":
            do throws(ControlProtocol.Failure) {
                return .success(try change(request))
            } catch {
                return .failure(error)
            }
        default:
            let known = ControlProtocol.commands.map(\.name)
            return .failure(.init("unknown-command", "found the command \(quoted(request.command)), expected one of \(known.joined(separator: ", "))"))
        }
    }

    /// A live change (docs/control.md); the result says what now holds.
    private func change(_ request: ControlProtocol.Request) throws(ControlProtocol.Failure) -> [String: Any] {
        func live<R>(_ body: () throws(LiveChangeError) -> R) throws(ControlProtocol.Failure) -> R {
            do { return try body() } catch { throw ControlProtocol.Failure(error.code.rawValue, error.message) }
        }
        if ["replace", "insert", "remove"].contains(request.command) {
            let report: SpliceReport
            switch request.command {
            case "remove":
                let names = try ControlProtocol.names(request, "queues", example: #"{"command":"remove","queues":["blur"]}"#)
                report = try live { () throws(LiveChangeError) in try graph.removeSegment(names) }
            case "replace":
                let example = #"{"command":"replace","queues":["blur"],"with":"gaussianblur sigma=2"}"#
                let names = try ControlProtocol.names(request, "queues", example: example)
                let configs = try segment(request, example: example)
                report = try live { () throws(LiveChangeError) in try graph.replaceSegment(names, with: configs) }
            default:
                let example = #"{"command":"insert","after":"plasma","pad":0,"with":"boxblur radius=2"}"#
                let after = try ControlProtocol.required(request, "after", example: example)
                let padText = try ControlProtocol.text(request, "pad") ?? "0"
                guard let pad = Int(padText) else { throw ControlProtocol.Failure("bad-value", "found '\(padText)' as 'pad', expected an integer") }
                let configs = try segment(request, example: example)
                report = try live { () throws(LiveChangeError) in try graph.insertSegment(configs, after: after, pad: pad) }
            }
            return ["removed": report.removed, "parked_ns": report.parkedNanoseconds, "drain_ns": report.drainNanoseconds,
                    "abandoned": report.abandoned, "queues": graph.engine.queueNames]
        }
        let queue = try ControlProtocol.required(request, "queue", example: #"{"command":"\#(request.command)","queue":"blur"}"#)
        switch request.command {
        case "set":
            let example = #"{"command":"set","queue":"blur","parameter":"radius","value":5}"#
            let parameter = try ControlProtocol.required(request, "parameter", example: example)
            let text = try ControlProtocol.required(request, "value", example: example)
            let value = try live { () throws(LiveChangeError) in try graph.setParameter(queue: queue, parameter, to: text) }
            return ["queue": queue, "parameter": parameter, "value": "\(value)"]
        case "pause", "resume":
            try live { () throws(LiveChangeError) in try graph.setHeld(queue: queue, request.command == "pause") }
            return ["queue": queue, "paused": request.command == "pause"]
        default:
            let (size, management) = try queueChange(request, queue: queue)
            try live { () throws(LiveChangeError) in try graph.reconfigureQueue(queue, size: size, management: management) }
            let config = graph.engine.currentQueueConfig(queue)
            return ["queue": queue, "size": config?.size ?? NSNull(), "management": config?.management.name ?? NSNull()]
        }
    }

    /// The queues a `replace` or `insert` request's launch line declares.
    private func segment(_ request: ControlProtocol.Request, example: String) throws(ControlProtocol.Failure) -> [QueueConfig] {
        let line = try ControlProtocol.required(request, "with", example: example)
        guard let segment else { throw ControlProtocol.Failure("refused", "this graph's endpoint reads no launch lines: splice from the library instead") }
        do { return try segment(line) } catch {
            throw ControlProtocol.Failure("bad-value", "\(error)")
        }
    }

    /// The size and management a `queue` request asks for.
    private func queueChange(_ request: ControlProtocol.Request, queue: String) throws(ControlProtocol.Failure) -> (Int?, QueueManagement?) {
        func number(_ key: String) throws(ControlProtocol.Failure) -> Double? {
            guard let text = try ControlProtocol.text(request, key) else { return nil }
            guard let value = Double(text), value.isFinite else {
                throw ControlProtocol.Failure("bad-value", "found '\(text)' as '\(key)', expected a number")
            }
            return value
        }
        var size: Int?
        if let text = try ControlProtocol.text(request, "size") {
            guard let value = Int(text) else { throw ControlProtocol.Failure("bad-value", "found '\(text)' as 'size', expected an integer") }
            size = value
        }
        let redKeys = ["red-min", "red-max", "red-probability"]
        let name = try ControlProtocol.text(request, "management")
        guard size != nil || name != nil else {
            throw ControlProtocol.Failure.malformed("found neither 'size' nor 'management' in a queue request, expected one like {\"command\":\"queue\",\"queue\":\"blur\",\"size\":8}")
        }
        switch name {
        case nil:
            if let key = redKeys.first(where: { request.arguments[$0] != nil }) {
                throw ControlProtocol.Failure.malformed("found '\(key)' without 'management': 'red', expected both")
            }
            return (size, nil)
        case "default": return (size, .default)
        case "taildrop": return (size, .taildrop)
        case "headdrop": return (size, .headdrop)
        case "red":
            let fallback = RED.forSize(size ?? graph.engine.currentQueueConfig(queue)?.size ?? 1)
            let (low, high, probability) = (try number("red-min"), try number("red-max"), try number("red-probability"))
            return (size, .red(RED(minThreshold: low ?? fallback.minThreshold, maxThreshold: high ?? fallback.maxThreshold,
                                   maxProbability: probability ?? fallback.maxProbability)))
        case let other?:
            throw ControlProtocol.Failure("bad-value", "found the management '\(other)', expected one of default, taildrop, headdrop or red")
        }
    }

    /// The graph as configured, and its statistics now.
    private func dump() -> [String: Any] {
        let (queues, connections) = graph.engine.currentGraph()
        let changed = graph.engine.changedParameters
        return [
            "graph": name, "pid": Int(getpid()), "started": started,
            "queues": queues.map { q -> [String: Any] in
                var object: [String: Any] = [
                    "name": q.name, "size": q.size, "management": q.management.name, "discipline": q.discipline.name,
                    "sync": q.sync.rawValue, "threading": q.threading.rawValue, "buffers": q.buffers.rawValue,
                    "out_pads": q.outPads, "servers": q.servers,
                    "processor_type": graph.processor(ofQueue: q.name).map { String(describing: type(of: $0)) } ?? NSNull(),
                ]
                if let bound = q.byteBound { object["byte_bound"] = bound }
                for (key, value) in details[q.name] ?? [:] { object[key] = value }
                if var parameters = object["parameters"] as? [String: Any] {
                    for (name, value) in changed[q.name] ?? [:] { parameters[name] = value.json }
                    object["parameters"] = parameters
                }
                return object
            },
            "connections": connections.map { ["from": $0.from, "pad": $0.pad, "to": $0.to] as [String: Any] },
            "stats": graph.statistics().jsonObject,
        ]
    }
}

/// Makes a descriptor non-blocking and closed on exec.
private func nonBlocking(_ fd: Int32) {
    _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
    _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
}

/// A `sockaddr_un` for `path`; throws when the path does not fit.
func unixAddress(_ path: String) throws(ControlError) -> sockaddr_un {
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    let capacity = MemoryLayout.size(ofValue: address.sun_path)
    guard bytes.count < capacity else { throw ControlError("the socket path \(path) is longer than \(capacity - 1) bytes") }
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
        raw.copyBytes(from: bytes)
        raw[bytes.count] = 0
    }
    return address
}
