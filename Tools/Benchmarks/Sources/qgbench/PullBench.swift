// `qgbench pull`: the main demo's animation rendered both ways, frames
// pushed through queues (Graphs/animation.yaml) and frame jobs pulling a
// node network on two workers (Graphs/pulled.yaml), alternating, 3 rounds:
//   - paced at 640×360@60 for 600 frames: deadline misses and CPU;
//   - overloaded, 640×360 launched at 1000 fps with 100 ms deadlines for
//     3000 ticks: the frames per second each way delivers in time.
import Foundation
import QueueGraphFile

func pullBenchmark() throws {
    print("pull benchmark: Graphs/animation.yaml (push) against Graphs/pulled.yaml (pull, 2 workers), alternating, median of 3; \(ProcessInfo.processInfo.activeProcessorCount) cores")
    let output = "/dev/null"
    var paced: [String: [RealtimeRun]] = [:], overloaded: [String: [RealtimeRun]] = [:]
    for round in 1...3 {
        for (way, graph) in [("push", "animation.yaml"), ("pull", "pulled.yaml")] {
            let real = try measure(try animation(graph, width: 640, height: 360, fps: 60, frames: 600, output: output))
            let flat = try measure(try animation(graph, width: 640, height: 360, fps: 1000, frames: 3000, latency: 100, output: output))
            paced[way, default: []].append(real)
            overloaded[way, default: []].append(flat)
            print(String(format: "  round %d %@: paced %d misses, CPU %.1f %% | overloaded %.1f frames/s in time (%d of 3000, %d late)",
                         round, way, real.misses, real.cpuPercent, Double(flat.delivered) / flat.wall, flat.delivered, flat.misses))
        }
    }
    var figures: [String: Double] = [:]
    for way in ["push", "pull"] {
        figures["\(way)_misses"] = median(paced[way]!.map { Double($0.misses) })
        figures["\(way)_cpu_pct"] = median(paced[way]!.map(\.cpuPercent))
        figures["\(way)_fps"] = median(overloaded[way]!.map { Double($0.delivered) / $0.wall })
    }
    figures["pull_over_push_fps"] = figures["pull_fps"]! / figures["push_fps"]!
    figures["pull_over_push_cpu"] = figures["pull_cpu_pct"]! / figures["push_cpu_pct"]!
    print(String(format: "  median: paced CPU push %.1f %%, pull %.1f %% (×%.2f); overloaded push %.1f, pull %.1f frames/s (×%.2f)",
                 figures["push_cpu_pct"]!, figures["pull_cpu_pct"]!, figures["pull_over_push_cpu"]!,
                 figures["push_fps"]!, figures["pull_fps"]!, figures["pull_over_push_fps"]!))
    printFigures(figures)
}
