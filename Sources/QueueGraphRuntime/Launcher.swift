#if canImport(Glibc)
import Glibc
#endif
import CQueueGraph
@_spi(Runtime) import QueueGraphCore

/// Starts a joinable thread named `name` (15 characters are kept) running
/// `body`; the caller joins it with `pthread_join`.
///
/// Threading: any thread.
public func spawnThread(name: String, _ body: @escaping @Sendable () -> Void) -> pthread_t {
    final class Start: Sendable {
        let name: String
        let body: @Sendable () -> Void
        init(name: String, body: @escaping @Sendable () -> Void) { (self.name, self.body) = (name, body) }
    }
    let box = Unmanaged.passRetained(Start(name: name, body: body)).toOpaque()
    var thread = pthread_t()
    let rc = pthread_create(&thread, nil, { raw in
        let start = Unmanaged<Start>.fromOpaque(raw!).takeRetainedValue()
        qg_set_thread_name(start.name)
        start.body()
        return nil
    }, box)
    precondition(rc == 0, "pthread_create failed: \(rc)")
    return thread
}

/// Starts `path` with `arguments` and one more environment variable
/// (`KEY=VALUE`), keeping `fds` open in the child.
func spawnProcess(_ path: String, _ arguments: [String], environment: String, keeping fds: [Int32]) throws -> Int32 {
    var words: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
    defer { for word in words { free(word) } }
    var pid: Int32 = 0
    let error = fds.withUnsafeBufferPointer { keep in qg_spawn(path, &words, environment, keep.baseAddress, Int32(keep.count), &pid) }
    guard error == 0 else { throw ProcessorError("cannot start \(path): \(String(cString: strerror(error)))") }
    return pid
}

/// The runtime's `ChildLauncher`: `posix_spawn` and `pthread_create`.
struct Launcher: ChildLauncher {
    func spawn(_ path: String, _ arguments: [String], environment: String, keeping fds: [Int32]) throws -> Int32 {
        try spawnProcess(path, arguments, environment: environment, keeping: fds)
    }

    func startThread(name: String, _ body: @escaping @Sendable () -> Void) -> pthread_t { spawnThread(name: name, body) }
}
