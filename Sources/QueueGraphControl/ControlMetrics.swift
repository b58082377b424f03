import Prometheus
import QueueGraphCore

/// The statistics as OpenMetrics (Prometheus) text, through swift-prometheus:
/// per queue (label `queue`) its arrivals, departures and drops by reason
/// (counters), depth, size-bounded maximum and residency (gauges); per
/// pool (`pool`) buffers in use and bytes; per thread (`thread`) busy and
/// idle seconds. Every series carries the label `graph`.
///
/// Threading: one thread at a time (the control endpoint's).
final class ControlMetrics {
    private let graph: String
    private let registry = PrometheusCollectorRegistry()
    private var counters: [String: Counter] = [:]
    private var gauges: [String: Gauge] = [:]

    init(graph: String) { self.graph = graph }

    /// The text for a snapshot.
    func text(_ stats: GraphStatistics) -> String {
        for q in stats.queues {
            let labels = [("queue", q.name)]
            count("qgraph_queue_arrived", "buffers offered to the queue", labels, q.arrived)
            count("qgraph_queue_popped", "buffers its processor took", labels, q.popped)
            count("qgraph_queue_acks", "acks sent for its buffers", labels, q.acks)
            count("qgraph_queue_naks", "naks sent for its buffers", labels, q.naks)
            for (reason, dropped) in q.dropped {
                count("qgraph_queue_dropped", "buffers dropped, by reason", labels + [("reason", reason.description)], dropped)
            }
            measure("qgraph_queue_depth", "buffers waiting now", labels, Double(q.depth))
            measure("qgraph_queue_max_depth", "most buffers waiting at once", labels, Double(q.maxDepth))
            measure("qgraph_queue_bytes_queued", "payload bytes waiting now", labels, Double(q.bytesQueued))
            measure("qgraph_queue_residency_mean_seconds", "mean time a sampled buffer waited", labels, q.residencyMeanNanoseconds / 1e9)
        }
        for p in stats.pools {
            let labels = [("pool", p.name)]
            measure("qgraph_pool_capacity", "buffers the pool has", labels, Double(p.capacity))
            measure("qgraph_pool_in_use", "buffers out now", labels, Double(p.inUse))
            measure("qgraph_pool_bytes_in_use", "payload bytes out now", labels, Double(p.bytesInUse))
            count("qgraph_pool_acquired", "buffers handed out", labels, p.acquired)
            count("qgraph_pool_exhausted", "requests that found no free buffer", labels, p.exhausted)
        }
        for t in stats.threads {
            let labels = [("thread", "\(t.group)")]
            count("qgraph_thread_invocations", "processor invocations", labels, t.invocations)
            measure("qgraph_thread_busy_seconds", "seconds the thread spent working", labels, Double(t.busyNanoseconds) / 1e9)
            measure("qgraph_thread_idle_seconds", "seconds the thread slept", labels, Double(t.idleNanoseconds) / 1e9)
        }
        return registry.emitToString()
    }

    /// Sets a counter to a total from the snapshot.
    private func count(_ name: String, _ help: String, _ labels: [(String, String)], _ value: Int) {
        let labels = [("graph", graph)] + labels
        let key = name + labels.map { "|\($0.0)=\($0.1)" }.joined()
        let counter = counters[key] ?? registry.makeCounter(descriptor: MetricNameDescriptor(metricName: name, unitName: "total", helpText: help), labels: labels)
        counters[key] = counter
        counter.reset()
        counter.increment(by: Int64(value))
    }

    private func measure(_ name: String, _ help: String, _ labels: [(String, String)], _ value: Double) {
        let labels = [("graph", graph)] + labels
        let key = name + labels.map { "|\($0.0)=\($0.1)" }.joined()
        let gauge = gauges[key] ?? registry.makeGauge(descriptor: MetricNameDescriptor(metricName: name, unitName: "", helpText: help), labels: labels)
        gauges[key] = gauge
        gauge.set(value)
    }
}
