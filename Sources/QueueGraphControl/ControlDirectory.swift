import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Where running graphs open their control sockets: `$XDG_RUNTIME_DIR/qgraph`,
/// else `/tmp/qgraph-UID`, a directory only its user may enter (0700). A
/// socket is named `GRAPH.PID.sock`.
///
/// Threading: any thread.
public enum ControlDirectory {
    /// The directory for this user (not made yet, perhaps).
    public static var path: String {
        if let runtime = ProcessInfo.processInfo.environment["XDG_RUNTIME_DIR"], !runtime.isEmpty { return runtime + "/qgraph" }
        return "/tmp/qgraph-\(getuid())"
    }

    /// Makes the directory (0700) when it is missing; refuses one that
    /// another user owns or that others may enter.
    static func make() throws(ControlError) -> String {
        let path = path
        if mkdir(path, 0o700) != 0 && errno != EEXIST { throw ControlError("cannot make \(path): \(String(cString: strerror(errno)))") }
        var info = stat()
        guard lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else { throw ControlError("\(path) is not a directory") }
        guard info.st_uid == getuid() else { throw ControlError("\(path) belongs to another user (uid \(info.st_uid))") }
        if info.st_mode & 0o077 != 0 && chmod(path, 0o700) != 0 {
            throw ControlError("\(path) may be entered by others and cannot be made private: \(String(cString: strerror(errno)))")
        }
        return path
    }

    /// A running graph's socket, as its name says.
    public struct Entry: Sendable, Equatable {
        public var graph: String
        public var pid: Int32
        public var path: String
    }

    /// The sockets in the directory, oldest process first; sockets whose
    /// process has gone are removed (a graph that was killed leaves one).
    public static func entries() -> [Entry] {
        let directory = path
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        var found: [Entry] = []
        for name in names where name.hasSuffix(".sock") {
            let parts = name.dropLast(5).split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count >= 2, let pid = Int32(parts.last!) else { continue }
            let path = directory + "/" + name
            if kill(pid, 0) != 0 && errno == ESRCH {
                unlink(path)
                continue
            }
            found.append(Entry(graph: parts.dropLast().joined(separator: "."), pid: pid, path: path))
        }
        return found.sorted { $0.pid < $1.pid }
    }

    /// The socket path for a graph of this process; the name keeps letters,
    /// digits, `-` and `_` (others become `_`) and is cut to fit `sun_path`.
    static func socketPath(in directory: String, graph: String) -> String {
        let safe = String(graph.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "_" }.prefix(40))
        return "\(directory)/\(safe.isEmpty ? "graph" : safe).\(getpid()).sock"
    }
}

/// A control endpoint or client that cannot work: the reason.
///
/// Threading: a value; any thread.
public struct ControlError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
