import DequeModule

extension Deque {
    /// The elements as an array. An empty deque gives `[]` without copying:
    /// `Array(deque)` of an empty deque writes a count into the standard
    /// library's shared empty-array storage, a data race (Thread Sanitizer
    /// reports it) when two threads do it at once.
    var elements: [Element] { isEmpty ? [] : Array(self) }
}
