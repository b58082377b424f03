import Foundation
import QueueGraphCore

/// The control protocol, version 2 (docs/control.md): newline-delimited
/// JSON over a Unix stream socket. The server greets each client with a
/// hello line; each request is one JSON object on one line, with a
/// `command` and an optional `id` that the response echoes; responses come
/// in request order, one line each, `ok` true with a `result`, or false
/// with an `error` (a `code` and a `message`).
///
/// Threading: values and pure functions; any thread.
public enum ControlProtocol {
    public static let name = "qgraph-control"
    /// 2: `stats` names the `child` and `remote` queues' links `links` (with
    /// `host`); version 1 called them `processes`.
    public static let version = 2
    /// The longest request line taken; a longer one is refused and its connection closed.
    public static let maxLineBytes = 64 * 1024

    /// What a request may ask, with what it does.
    public static let commands: [(name: String, summary: String)] = [
        ("hello", "the greeting again: protocol, version, graph, pid, start time"),
        ("stats", "the statistics now: queues, pools, threads (as `qgraph run --json` prints them)"),
        ("dump", "the graph: its queues with their policies and processors, its connections, and the statistics now"),
        ("metrics", "the statistics as OpenMetrics (Prometheus) text"),
        ("set", "sets a processor's live parameter: queue, parameter, value; answered once the processor has it"),
        ("pause", "pauses one queue and the branch it feeds: queue"),
        ("resume", "resumes a paused queue: queue"),
        ("queue", "changes a queue's size and management: queue, and size, management, red-min, red-max, red-probability"),
        ("replace", "replaces a segment while buffers flow: queues (a chain), with (a launch line); the old one drains first"),
        ("insert", "inserts queues: after (a queue), pad, with (a launch line)"),
        ("remove", "removes a segment, which drains first: queues"),
    ]

    /// One request, parsed.
    public struct Request: Equatable, Sendable {
        /// Echoed in the response: a string, a number, or nil when the request had none.
        public var id: RequestID?
        public var command: String
        /// The request's other fields, as JSON text by name (for commands that take arguments).
        public var arguments: [String: String]

        public init(id: RequestID? = nil, command: String, arguments: [String: String] = [:]) {
            (self.id, self.command, self.arguments) = (id, command, arguments)
        }

        /// The request as one line of JSON, newline included.
        public var line: String {
            var fields = ["\"command\":" + quoted(command)]
            if let id { fields.insert("\"id\":" + id.json, at: 0) }
            for (key, value) in arguments.sorted(by: { $0.key < $1.key }) { fields.append(quoted(key) + ":" + value) }
            return "{" + fields.joined(separator: ",") + "}\n"
        }
    }

    /// The argument `key` of a request as text (a string as it is, a
    /// number or a boolean as a graph file would write it), or nil when absent.
    public static func text(_ request: Request, _ key: String) throws(Failure) -> String? {
        guard let json = request.arguments[key] else { return nil }
        switch try? JSONSerialization.jsonObject(with: Data(json.utf8), options: [.fragmentsAllowed]) {
        case let text as String: return text
        case let number as NSNumber where isBool(number): return number.boolValue ? "true" : "false"
        case let number as NSNumber where isInteger(number): return "\(number.intValue)"
        case let number as NSNumber: return "\(number.doubleValue)"
        default: throw Failure("bad-value", "found \(json) as '\(key)', expected a string, a number or a boolean")
        }
    }

    /// The argument `key`, which the command needs.
    public static func required(_ request: Request, _ key: String, example: String) throws(Failure) -> String {
        guard let text = try text(request, key) else { throw missing(key, in: request, example: example) }
        return text
    }

    private static func missing(_ key: String, in request: Request, example: String) -> Failure {
        .malformed("found no '\(key)' in a \(request.command) request, expected one like \(example)")
    }

    /// The argument `key` as a list of names: a JSON list of strings, or one string of names separated by commas.
    public static func names(_ request: Request, _ key: String, example: String) throws(Failure) -> [String] {
        guard let json = request.arguments[key] else { throw missing(key, in: request, example: example) }
        switch try? JSONSerialization.jsonObject(with: Data(json.utf8), options: [.fragmentsAllowed]) {
        case let text as String: return text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        case let list as [String]: return list
        default: throw Failure("bad-value", "found \(json) as '\(key)', expected a list of queue names")
        }
    }

    /// A request's `id`: a string or an integer.
    public enum RequestID: Equatable, Sendable {
        case number(Int)
        case text(String)

        var json: String {
            switch self {
            case .number(let n): "\(n)"
            case .text(let s): quoted(s)
            }
        }
    }

    /// Why a request was refused: a stable `code` and a message for people.
    public struct Failure: Error, Equatable, Sendable {
        public var code: String
        public var message: String

        public init(_ code: String, _ message: String) {
            (self.code, self.message) = (code, message)
        }

        public static func malformed(_ message: String) -> Failure { Failure("malformed", message) }
    }

    /// Parses one request line (without its newline).
    public static func parse(_ line: some Collection<UInt8>) -> Result<Request, Failure> {
        guard line.count <= maxLineBytes else {
            return .failure(.malformed("found a request of \(line.count) bytes, expected at most \(maxLineBytes)"))
        }
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: Data(line), options: [.fragmentsAllowed])
        } catch {
            return .failure(.malformed("found text that is not JSON, expected one JSON object per line like {\"id\":1,\"command\":\"stats\"}"))
        }
        guard let fields = object as? [String: Any] else {
            return .failure(.malformed("found \(kind(of: object)), expected a JSON object like {\"id\":1,\"command\":\"stats\"}"))
        }
        var id: RequestID?
        switch fields["id"] {
        case nil, is NSNull: break
        case let text as String: id = .text(text)
        case let number as NSNumber where isInteger(number): id = .number(number.intValue)
        case let other?: return .failure(.malformed("found \(kind(of: other)) as 'id', expected a string or an integer"))
        }
        guard let command = fields["command"] else {
            return .failure(Failure("malformed", "found no 'command', expected one of \(commands.map(\.name).joined(separator: ", "))"))
        }
        guard let name = command as? String else {
            return .failure(.malformed("found \(kind(of: command)) as 'command', expected a string"))
        }
        var arguments: [String: String] = [:]
        for (key, value) in fields where key != "id" && key != "command" {
            guard let data = try? JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed, .sortedKeys]) else { continue }
            arguments[key] = String(decoding: data, as: UTF8.self)
        }
        return .success(Request(id: id, command: name, arguments: arguments))
    }

    /// A success line: `{"id":…,"ok":true,"result":…}` and a newline.
    public static func success(id: RequestID?, result: Any) -> String {
        line(["ok": true, "result": result], id: id)
    }

    /// A failure line: `{"id":…,"ok":false,"error":{"code":…,"message":…}}` and a newline.
    public static func failure(id: RequestID?, _ failure: Failure) -> String {
        line(["ok": false, "error": ["code": failure.code, "message": failure.message]], id: id)
    }

    /// The greeting a client gets on connecting.
    public static func hello(graph: String, pid: Int32, started: Double) -> [String: Any] {
        ["protocol": name, "version": version, "graph": graph, "pid": Int(pid), "started": started,
         "commands": commands.map(\.name)]
    }

    static func line(_ object: [String: Any], id: RequestID?) -> String {
        var object = object
        switch id {
        case .number(let n): object["id"] = n
        case .text(let s): object["id"] = s
        case nil: object["id"] = NSNull()
        }
        return json(object) + "\n"
    }

    /// Compact JSON with sorted keys, of what `JSONSerialization` makes
    /// and takes (dictionaries, arrays, strings, numbers, booleans, null).
    /// Written here: Foundation's writer takes over a millisecond for a
    /// 2 KiB statistics answer on Linux (`Tools/bench reconfigure`), this one
    /// some microseconds, so that `qgraph top` at 10 Hz costs the graph's
    /// process next to nothing. Non-finite numbers become null.
    public static func json(_ object: Any) -> String {
        var out = ""
        out.reserveCapacity(4096)
        write(object, to: &out)
        return out
    }

    private static func write(_ value: Any, to out: inout String) {
        // A parsed number is an NSNumber, whose type code says boolean, integer or not
        // (a cast to Bool or Int would take 1 for true); Swift's own values are not.
        if type(of: value) is NSNumber.Type, let number = value as? NSNumber {
            if isBool(number) { out += number.boolValue ? "true" : "false" } else if isInteger(number) { out += String(number.int64Value) } else {
                writeNumber(number.doubleValue, to: &out)
            }
            return
        }
        switch value {
        case let text as String: appendJSONQuoted(text, to: &out)
        case let flag as Bool: out += flag ? "true" : "false"
        case let int as Int: out += String(int)
        case let double as Double: writeNumber(double, to: &out)
        case let object as [String: Any]:
            out += "{"
            for (i, key) in object.keys.sorted().enumerated() {
                if i > 0 { out += "," }
                appendJSONQuoted(key, to: &out)
                out += ":"
                write(object[key]!, to: &out)
            }
            out += "}"
        case let array as [Any]:
            out += "["
            for (i, element) in array.enumerated() {
                if i > 0 { out += "," }
                write(element, to: &out)
            }
            out += "]"
        case let other as any BinaryInteger: out += "\(other)"
        default: out += "null"
        }
    }

    private static func writeNumber(_ value: Double, to out: inout String) {
        guard value.isFinite else { return out += "null" }
        out += value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : "\(value)"
    }

    private static func kind(of value: Any) -> String {
        switch value {
        case is [Any]: "a list"
        case is String: "a string"
        case let number as NSNumber: isBool(number) ? "a boolean" : "a number"
        case is NSNull: "null"
        case is [String: Any]: "an object"
        default: "a value"
        }
    }

    /// JSONSerialization's numbers say what they were by their Objective-C type code.
    private static func typeCode(_ number: NSNumber) -> UInt8 { UInt8(bitPattern: number.objCType.pointee) }
    private static func isBool(_ number: NSNumber) -> Bool { typeCode(number) == UInt8(ascii: "c") || typeCode(number) == UInt8(ascii: "B") }
    private static func isInteger(_ number: NSNumber) -> Bool { !isBool(number) && Array("sSiIlLqQ".utf8).contains(typeCode(number)) }
}

/// A JSON string literal.
func quoted(_ text: String) -> String { ControlProtocol.json(text) }
