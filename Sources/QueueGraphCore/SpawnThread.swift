#if canImport(Glibc)
import Glibc
#endif
import CQueueGraph

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
