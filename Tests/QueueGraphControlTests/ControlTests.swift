import Foundation
import QueueGraphCore
@testable import QueueGraphControl
import QueueGraphRuntime
import QueueGraphTestKit
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// testsrc (paced) → a thread → a counting sink: a graph that runs for a while.
func pacedGraph(count: Int = 4_000, rate: Double = 2_000) throws -> (QueueGraph, CountingSink) {
    let sink = CountingSink()
    let graph = try QueueGraphConfig(name: "control-test")
        .adding(QueueConfig(name: "source", buffers: .provider, processor: { _ in TestSource(count: count, size: 64, rate: rate) },
                            creator: { q in BufferPool(name: q.name, count: 16, payloadCapacity: 64) }))
        .adding(QueueConfig(name: "sink", size: 8, threading: .thread, outPads: 0, processor: { _ in sink }))
        .connecting("source", to: "sink")
        .createQueueGraph()
    return (graph, sink)
}

@Suite("Control protocol")
struct ControlProtocolTests {
    func parse(_ text: String) -> Result<ControlProtocol.Request, ControlProtocol.Failure> { ControlProtocol.parse(Array(text.utf8)) }

    @Test("answers are compact JSON with sorted keys: strings escaped, numbers, booleans and null as JSON has them, parsed values kept")
    func jsonWriter() throws {
        let parsed = try JSONSerialization.jsonObject(with: Data(#"{"t":true,"f":false,"one":1,"zero":0,"half":1.5}"#.utf8))
        let object: [String: Any] = [
            "text": "a \"quote\", a \\, a\nline, a\ttab, \u{1} and é / ∑", "int": -42, "double": 0.25, "small": 1e-7, "whole": 3.0,
            "infinite": Double.infinity, "yes": true, "none": NSNull(), "list": [1, "two", [3]], "parsed": parsed,
        ]
        let text = ControlProtocol.json(object)
        #expect(text.hasPrefix(#"{"double":0.25,"infinite":null,"int":-42,"list":[1,"two",[3]],"none":null,"parsed":{"f":false,"half":1.5,"one":1,"t":true,"zero":0},"#))
        #expect(text.contains(#""text":"a \"quote\", a \\, a\nline, a\ttab, \u0001 and é / ∑""#))
        let back = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        #expect(back["text"] as? String == object["text"] as? String)
        #expect(back["small"] as? Double == 1e-7 && back["whole"] as? Int == 3 && back["yes"] as? Bool == true)
    }

    @Test("a request: a command, an id echoed back, its other fields kept as JSON")
    func request() throws {
        #expect(try parse(#"{"id": 7, "command": "stats"}"#).get() == .init(id: .number(7), command: "stats"))
        #expect(try parse(#"{"id": "a", "command": "set", "value": 2.5}"#).get() == .init(id: .text("a"), command: "set", arguments: ["value": "2.5"]))
        #expect(try parse(#"{"command": "dump"}"#).get() == .init(command: "dump"))
        let request = ControlProtocol.Request(id: .number(3), command: "stats")
        #expect(try parse(String(request.line.dropLast())).get() == request)
    }

    @Test("bad requests are refused with what was expected",
          arguments: [("stats", "not JSON"), ("[1, 2]", "found a list, expected a JSON object"), (#"{"id": 1}"#, "found no 'command'"),
                      (#"{"command": 3}"#, "found a number as 'command', expected a string"),
                      (#"{"id": true, "command": "stats"}"#, "found a boolean as 'id', expected a string or an integer"),
                      (#"{"id": 1.5, "command": "stats"}"#, "found a number as 'id'")])
    func refused(text: String, fragment: String) {
        guard case .failure(let failure) = parse(text) else { Issue.record("\(text) was taken"); return }
        #expect(failure.code == "malformed" && failure.message.contains(fragment), "\(failure)")
    }

    @Test("the parser survives arbitrary bytes: 20 000 mutated and random lines, each answered with one JSON line")
    func fuzzSlice() throws {
        var generator = SystemRandomNumberGenerator()
        let seeds = [#"{"id":1,"command":"stats"}"#, #"{"command":"dump","x":[1,{"y":null}]}"#, #"{"id":"é\u0000","command":"hello"}"#]
        let (graph, _) = try pacedGraph(count: 1, rate: 0)
        let endpoint = ControlEndpoint(graph: graph, name: "fuzz")
        for round in 0..<20_000 {
            var bytes = Array(seeds[round % seeds.count].utf8)
            if round % 4 == 3 {
                bytes = (0..<Int.random(in: 0..<64, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            } else {
                for _ in 0..<Int.random(in: 1...4, using: &generator) {
                    let i = Int.random(in: 0..<bytes.count, using: &generator)
                    switch Int.random(in: 0..<3, using: &generator) {
                    case 0: bytes[i] = UInt8.random(in: 0...255, using: &generator)
                    case 1: bytes.remove(at: i)
                    default: bytes.insert(UInt8.random(in: 0...255, using: &generator), at: i)
                    }
                    if bytes.isEmpty { break }
                }
            }
            bytes.removeAll { $0 == UInt8(ascii: "\n") }
            let answer = endpoint.answer(bytes)
            #expect(answer.hasSuffix("\n") && answer.filter { $0 == "\n" }.count == 1)
            let object = try JSONSerialization.jsonObject(with: Data(answer.utf8)) as? [String: Any]
            #expect(object?["ok"] is Bool, "\(answer)")
        }
        _ = graph.stop(.abandon)
    }
}

@Suite("Control endpoint", .serialized)
struct ControlEndpointTests {
    @Test("a running graph answers hello, stats, dump and metrics on a 0600 socket in a 0700 directory; ls finds it; closing removes it")
    func commands() throws {
        let (graph, sink) = try pacedGraph()
        let endpoint = ControlEndpoint(graph: graph, name: "control-test", details: ["sink": ["processor": "countingsink"]])
        try endpoint.open()
        try graph.start()
        var info = stat()
        #expect(stat(endpoint.path, &info) == 0 && info.st_mode & 0o777 == 0o600)
        #expect(stat(ControlDirectory.path, &info) == 0 && info.st_mode & 0o777 == 0o700)
        #expect(ControlDirectory.entries().contains { $0.path == endpoint.path && $0.graph == "control-test" && $0.pid == getpid() })

        let client = try ControlClient(path: endpoint.path)
        #expect(client.hello["graph"] as? String == "control-test" && client.hello["version"] as? Int == ControlProtocol.version && ControlProtocol.version == 2)
        usleep(200_000)
        let stats = try #require(try client.call("stats") as? [String: Any])
        let queues = try #require(stats["queues"] as? [[String: Any]])
        #expect(queues.map { $0["name"] as? String } == ["source", "sink"])
        #expect((queues[1]["popped"] as? Int ?? 0) > 0, "the sink took buffers while the graph ran")
        let dump = try #require(try client.call("dump") as? [String: Any])
        let described = try #require(dump["queues"] as? [[String: Any]])
        #expect(described[1]["size"] as? Int == 8 && described[1]["threading"] as? String == "thread" && described[1]["processor"] as? String == "countingsink")
        #expect((dump["connections"] as? [[String: Any]])?.first?["to"] as? String == "sink")
        let metrics = try #require(try client.call("metrics") as? String)
        #expect(metrics.contains(#"qgraph_queue_arrived_total{graph="control-test",queue="sink"}"#), "\(metrics.prefix(400))")
        #expect(metrics.contains("# TYPE qgraph_queue_depth gauge"))

        #expect(graph.waitUntilFinished(timeoutNanoseconds: 30_000_000_000))
        let final = graph.stop()
        #expect(final.ledgerProblems().isEmpty && sink.buffers == 4_000)
        endpoint.close()
        #expect(access(endpoint.path, F_OK) != 0, "the socket is gone")
    }

    @Test("bad input: malformed JSON and unknown commands get an error and keep the connection; silence times out; an overlong line closes it")
    func badInput() throws {
        let (graph, sink) = try pacedGraph()
        let endpoint = ControlEndpoint(graph: graph, name: "bad-input", timeout: 0.5)
        try endpoint.open()
        defer { endpoint.close() }
        try graph.start()

        let client = try ControlClient(path: endpoint.path)
        try client.send("{this is not json\n")
        let malformed = try client.response()
        #expect((malformed["error"] as? [String: Any])?["code"] as? String == "malformed")
        #expect(throws: ControlError.self) { try client.call("frobnicate") }
        #expect(try client.call("hello") is [String: Any], "the connection survived both")

        let silent = try ControlClient(path: endpoint.path)
        let timedOut = try silent.response(timeout: 3)
        #expect((timedOut["error"] as? [String: Any])?["code"] as? String == "timeout")

        let flooding = try ControlClient(path: endpoint.path)
        try flooding.send(String(repeating: "x", count: ControlProtocol.maxLineBytes + 10))
        let overlong = try flooding.response()
        #expect((overlong["error"] as? [String: Any])?["message"] as? String ?? "" != "" && overlong["ok"] as? Bool == false)
        #expect(throws: ControlError.self) { try flooding.response(timeout: 2) }   // closed

        #expect(graph.waitUntilFinished(timeoutNanoseconds: 30_000_000_000))
        #expect(graph.stop().ledgerProblems().isEmpty && sink.buffers == 4_000, "the graph did not notice")
    }

    @Test("100 clients at once: the first 64 are served, the rest told the endpoint is busy; the graph is unaffected")
    func manyClients() throws {
        let (graph, sink) = try pacedGraph()
        let endpoint = ControlEndpoint(graph: graph, name: "many")
        try endpoint.open()
        defer { endpoint.close() }
        try graph.start()
        var served: [ControlClient] = []
        var busy = 0
        for _ in 0..<100 {
            do {
                served.append(try ControlClient(path: endpoint.path))
            } catch {
                #expect("\(error)".contains("busy"), "\(error)")
                busy += 1
            }
        }
        #expect(served.count == 64 && busy == 36)
        for client in served { #expect(try client.call("stats") is [String: Any]) }
        served.removeAll()
        #expect(graph.waitUntilFinished(timeoutNanoseconds: 30_000_000_000))
        #expect(graph.stop().ledgerProblems().isEmpty && sink.buffers == 4_000)
    }
}
