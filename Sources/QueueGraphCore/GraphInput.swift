/// Pushes buffers into a graph from outside it (an application thread, a
/// capture callback) through a queue that has no upstream connection.
///
/// Threading: any thread, several at once.
public struct GraphInput: Sendable {
    let queue: RunningQueue

    /// What `push` does when a `default` queue is full.
    public enum WhenFull: Sendable, Equatable {
        /// Return `.full` at once; the caller keeps the buffer.
        case fail
        /// Wait up to the given nanoseconds for room, then return `.full`.
        case wait(timeoutNanoseconds: Int64)
    }

    /// The queue's name.
    public var name: String { queue.name }

    /// Offers `buffer` (the caller's hold goes with it unless the result is `.full`).
    @discardableResult
    public func push(_ buffer: Buffer, whenFull: WhenFull = .fail) -> PushResult {
        let result = queue.push(buffer, from: -1, fromGroup: -1)
        guard result == .full, case .wait(let timeout) = whenFull else { return result }
        let deadline = monotonicNanoseconds() &+ UInt64(max(0, timeout))
        while true {
            let now = monotonicNanoseconds()
            guard now < deadline else { return .full }
            queue.spaceEvent.wait(timeoutNanoseconds: Int64(deadline - now)) {
                !queue.isFull || queue.ended.load(ordering: .relaxed)
            }
            let result = queue.push(buffer, from: -1, fromGroup: -1)
            if result != .full { return result }
        }
    }

    /// No more input: once the queue is empty, end-of-stream flows downstream.
    /// Calling it again does nothing.
    public func endOfStream() {
        guard !queue.inputClosed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        queue.pendingUpstream.wrappingSubtract(1, ordering: .sequentiallyConsistent)
        queue.consumerEvent.notify()
    }
}
