/// A processor that needs its scheduler thread's whole life, not only single
/// calls: the GL owner creates its OpenGL context when the thread starts,
/// serves the commands other threads send it between invocations, and
/// destroys the context as the thread ends. Any processor of a thread group
/// may adopt it; a graph starts only once every group's hooks have started.
///
/// Threading: `threadDidStart`, `serviceThread` and `threadWillEnd` run on
/// the processor's scheduler thread, never during one of its `process`
/// calls; `hasThreadWork` on that thread before it sleeps.
public protocol ThreadLifecycle: BufferProcessor {
    /// Order among the group's hooks: lower starts first and ends last
    /// (an owner of a resource before the processors that use it). Default 0.
    var threadStartOrder: Int { get }
    /// The thread has started and runs nothing else yet. `wake` wakes the
    /// thread from its sleep (to serve work posted from other threads).
    /// Throwing refuses the graph's start: `QueueGraph.start()` throws
    /// `QueueGraphError.threadStartFailed` with the error's description.
    func threadDidStart(wake: WakeEvent) throws
    /// Between invocations: does work that is not a buffer (commands posted
    /// by other threads). Returns whether it did any.
    func serviceThread() -> Bool
    /// Whether `serviceThread` has work now (any thread may have posted it).
    var hasThreadWork: Bool { get }
    /// The thread is about to sleep: send what was kept back to go together. Default: nothing.
    func threadWillSleep()
    /// Whether it holds buffers it will still send on between invocations
    /// (frames whose work finishes on other threads): its queue does not
    /// end while it does. When it lets go of the last one it calls
    /// `ProcessContext.reconsider()`. Default false.
    var holdsBuffersToSend: Bool { get }
    /// The thread ends (the graph finished or stopped): release what
    /// `threadDidStart` made. Runs only when `threadDidStart` succeeded.
    func threadWillEnd()
}

extension ThreadLifecycle {
    public var threadStartOrder: Int { 0 }
    public func serviceThread() -> Bool { false }
    public var hasThreadWork: Bool { false }
    public func threadWillSleep() {}
    public var holdsBuffersToSend: Bool { false }
}

extension GroupScheduler {
    /// The group's processors that need the thread's life, in start order.
    @_spi(Runtime) public var lifecycles: [(queue: String, hook: any ThreadLifecycle)] {
        // `sorted` is stable: equal orders keep the queues' order.
        queues.compactMap { q in (q.processor as? any ThreadLifecycle).map { (q.name, $0) } }
            .sorted { $0.hook.threadStartOrder < $1.hook.threadStartOrder }
    }
}

/// Why a processor cannot work, as a message (a start refused by `threadDidStart`).
@_spi(Runtime) public struct ProcessorError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// A processor that says why it failed buffers (`ProcessResult.failed`):
/// the first reason, kept so that a program can print it with the count
/// (`qgraph run` does).
///
/// Threading: written by the processor's thread; read it once the graph has
/// stopped (or accept a stale value).
public protocol FailureReporting: AnyObject {
    /// The first failure's reason, or nil if it failed nothing.
    var failureReason: String? { get }
}
