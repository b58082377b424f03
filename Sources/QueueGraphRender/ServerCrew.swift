#if canImport(Glibc)
import Glibc
#endif
import QueueGraphCore
import QueueGraphRuntime

/// The servers of a compound node: the calling thread is server 0 and
/// `count - 1` helper threads are the others. `run` hands every server the
/// same job (each does its own part of it) and returns once all are done.
///
/// Threading: `run` and `stop` from the thread that owns the crew (the
/// compound queue's thread), one call at a time. The helper threads hold
/// the crew: it goes away only after `stop`.
final class ServerCrew: @unchecked Sendable {
    let count: Int
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let go = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private let done = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    // Guarded by `mutex`.
    private var job: ((Int) -> Void)?
    private var generation = 0
    private var pending = 0
    private var stopping = false
    private var threads: [pthread_t] = []

    init(count: Int, name: String) {
        self.count = count
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(go, nil)
        pthread_cond_init(done, nil)
        threads = (1..<count).map { server in
            spawnThread(name: "\(name.prefix(10))-s\(server)") { [self] in serve(server) }
        }
    }

    deinit {
        pthread_cond_destroy(go)
        pthread_cond_destroy(done)
        pthread_mutex_destroy(mutex)
        for p in [go, done] { p.deallocate() }
        mutex.deallocate()
    }

    /// Runs `body(server)` for every server at once, `body(0)` on the
    /// calling thread, and returns when every call has returned.
    func run(_ body: (Int) -> Void) {
        withoutActuallyEscaping(body) { body in
            pthread_mutex_lock(mutex)
            (job, pending, generation) = (body, count - 1, generation + 1)
            pthread_cond_broadcast(go)
            pthread_mutex_unlock(mutex)
            body(0)
            pthread_mutex_lock(mutex)
            while pending > 0 { pthread_cond_wait(done, mutex) }
            job = nil
            pthread_mutex_unlock(mutex)
        }
    }

    /// Ends and joins the helper threads; idempotent.
    func stop() {
        pthread_mutex_lock(mutex)
        stopping = true
        pthread_cond_broadcast(go)
        let joining = threads
        threads = []
        pthread_mutex_unlock(mutex)
        for thread in joining { pthread_join(thread, nil) }
    }

    private func serve(_ server: Int) {
        var seen = 0
        pthread_mutex_lock(mutex)
        while true {
            while generation == seen && !stopping { pthread_cond_wait(go, mutex) }
            if stopping { break }
            seen = generation
            let body = job!
            pthread_mutex_unlock(mutex)
            body(server)
            pthread_mutex_lock(mutex)
            pending -= 1
            if pending == 0 { pthread_cond_signal(done) }
        }
        pthread_mutex_unlock(mutex)
    }
}
