import Foundation
import QueueGraphCore

extension GraphStatistics {
    /// The statistics as JSON values (`JSONSerialization`), with the same
    /// keys in `qgraph run --json` and the control protocol's `stats`:
    /// `queues`, `pools`, `threads`, `links` (the `child` and `remote` queues' links).
    ///
    /// Threading: a value; any thread.
    public var jsonObject: [String: Any] {
        [
            "links": links.map { p in [
                "queue": p.queue, "host": p.host ?? NSNull(), "pid": p.pid, "starts": p.starts, "zero_copy": p.zeroCopy, "copied": p.copied,
                "returned": p.returned, "lost": p.lost, "last_exit": p.lastExit ?? NSNull(), "failure": p.failure ?? NSNull(),
            ] as [String: Any] },
            "queues": queues.map { q in [
                "name": q.name, "thread": q.thread, "arrived": q.arrived, "popped": q.popped,
                "dropped": Dictionary(uniqueKeysWithValues: q.dropped.map { ($0.key.description, $0.value) }),
                "acks": q.acks, "naks": q.naks, "abandoned": q.abandoned, "depth": q.depth, "max_depth": q.maxDepth,
                "bytes_popped": q.bytesPopped, "bytes_queued": q.bytesQueued, "bytes_allocated": q.bytesAllocated,
                "residency_mean_ns": q.residencyMeanNanoseconds,
                "residency_max_ns": q.residencyMaxNanoseconds, "residency_samples": q.residencySamples, "sent": q.sent ?? NSNull(),
            ] as [String: Any] },
            "pools": pools.map { p in [
                "name": p.name, "capacity": p.capacity, "acquired": p.acquired, "consumed": p.consumed,
                "dropped": p.dropped, "abandoned": p.abandoned, "in_use": p.inUse, "peak_in_use": p.peakInUse,
                "exhausted": p.exhausted, "bytes_in_use": p.bytesInUse, "bytes_allocated": p.bytesAllocated,
            ] as [String: Any] },
            "threads": threads.map { t in [
                "thread": t.group, "queues": t.queues, "invocations": t.invocations,
                "busy_ns": t.busyNanoseconds, "idle_ns": t.idleNanoseconds, "wakeups": t.wakeups,
            ] as [String: Any] },
        ]
    }
}
