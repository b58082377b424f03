import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A connection to a graph's control endpoint: it reads the hello, then
/// sends requests and reads their responses, one at a time, each within a
/// timeout.
///
/// Threading: one thread at a time.
public final class ControlClient {
    public let path: String
    /// The endpoint's greeting (protocol, version, graph, pid, start time).
    public private(set) var hello: [String: Any] = [:]
    private let fd: Int32
    private var input: [UInt8] = []
    private var nextID = 1

    /// Connects and reads the hello within `timeout` seconds.
    public init(path: String, timeout: Double = 2) throws(ControlError) {
        self.path = path
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ControlError("cannot make a socket: \(String(cString: strerror(errno)))") }
        var address = try unixAddress(path)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw ControlError("cannot connect to \(path): \(reason)")
        }
        let greeting = try response(timeout: timeout)
        guard greeting["ok"] as? Bool == true, let result = greeting["result"] as? [String: Any],
              result["protocol"] as? String == ControlProtocol.name else {
            close(fd)
            throw ControlError("\(path) answered \(ControlProtocol.json(greeting)), expected a \(ControlProtocol.name) hello")
        }
        hello = result
    }

    deinit { close(fd) }

    /// Sends `command` and returns its result; throws the endpoint's error.
    public func call(_ command: String, arguments: [String: String] = [:], timeout: Double = 5) throws(ControlError) -> Any {
        let id = nextID
        nextID += 1
        try send(ControlProtocol.Request(id: .number(id), command: command, arguments: arguments).line)
        let answer = try response(timeout: timeout)
        if answer["ok"] as? Bool == true { return answer["result"] ?? NSNull() }
        let error = answer["error"] as? [String: Any]
        throw ControlError("\(command): \(error?["message"] as? String ?? ControlProtocol.json(answer)) (\(error?["code"] as? String ?? "error"))")
    }

    /// Sends raw text (for tests of bad input).
    public func send(_ text: String) throws(ControlError) {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let sent = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard sent > 0 else { throw ControlError("cannot send to \(path): \(String(cString: strerror(errno)))") }
            bytes = bytes.dropFirst(sent)
        }
    }

    /// The next response line, parsed, within `timeout` seconds.
    public func response(timeout: Double = 5) throws(ControlError) -> [String: Any] {
        let deadline = Date().timeIntervalSince1970 + timeout
        while true {
            if let newline = input.firstIndex(of: UInt8(ascii: "\n")) {
                let line = Data(input[..<newline])
                input.removeSubrange(...newline)
                guard let object = (try? JSONSerialization.jsonObject(with: line)) as? [String: Any] else {
                    throw ControlError("\(path) sent a line that is not a JSON object")
                }
                return object
            }
            let left = deadline - Date().timeIntervalSince1970
            guard left > 0 else { throw ControlError("\(path) did not answer within \(timeout) s") }
            var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&entry, 1, Int32(left * 1000) + 1) > 0 else { continue }
            var chunk = [UInt8](repeating: 0, count: 64 * 1024)
            let count = recv(fd, &chunk, chunk.count, 0)
            guard count > 0 else { throw ControlError("\(path) closed the connection") }
            input += chunk[0..<count]
        }
    }
}
