import Foundation
import QueueGraphRender
import Synchronization

/// Lumiera's BufferProvider load test: a nominal computation load, split
/// into buffer jobs of calibrated cost that lock, fill and release buffers
/// of several sizes, runs on every core, each worker with its own
/// `BufferSlice`. Efficiency is nominal / (wall × cores).
func loadTest(nominalSeconds: Double = 4.0) {
    let cores = ProcessInfo.processInfo.activeProcessorCount
    let sizes = [4_096, 65_536, 262_144, 640 * 360 * 4, 1280 * 720 * 4]

    // Calibrate one unit of work (a 4 KiB pass over a buffer) on one thread.
    let manager = BufferManager()
    let calibration = manager.slice()
    var units = 2_000, seconds = 0.0
    repeat {
        units *= 2
        let start = DispatchTime.now().uptimeNanoseconds
        for job in 0..<8 { bufferJob(job, units: units / 8, sizes: sizes, slice: calibration) }
        seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    } while seconds < 0.2
    let nsPerUnit = seconds * 1e9 / Double(units)

    // Jobs of 0.25–2 ms each, until the nominal load is reached.
    var jobs: [Int] = []
    var total = 0.0, seed: UInt64 = 42
    while total < nominalSeconds {
        seed = seed &* 6364136223846793005 &+ 1442695040888963407
        let cost = 0.25e-3 + Double(seed >> 11) / Double(1 << 53) * 1.75e-3
        let n = max(1, Int(cost * 1e9 / nsPerUnit))
        jobs.append(n)
        total += Double(n) * nsPerUnit / 1e9
    }
    print(String(format: "loadtest: %d jobs, nominal %.2f s (%.1f ns per unit), %d cores, buffer sizes %@",
                 jobs.count, total, nsPerUnit, cores, sizes.map(String.init).joined(separator: ", ")))

    let jobList = jobs
    let next = Atomic<Int>(0)
    let finished = DispatchSemaphore(value: 0)
    let start = DispatchTime.now().uptimeNanoseconds
    for _ in 0..<cores {
        Thread {
            let slice = manager.slice()
            while case let j = next.add(1, ordering: .relaxed).oldValue, j < jobList.count {
                bufferJob(j, units: jobList[j], sizes: sizes, slice: slice)
            }
            finished.signal()
        }.start()
    }
    // Sleep until every worker is done (no polling: it would take CPU from them).
    for _ in 0..<cores { finished.wait() }
    let wall = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    let stats = manager.statistics
    let efficiency = total / (wall * Double(cores))
    print(String(format: "  wall %.3f s on %d cores: efficiency %.3f; %d locks, %d blocks allocated (%.1f MiB), %d bytes leased at end",
                 wall, cores, efficiency, stats.locks, stats.allocations, Double(stats.bytesAllocated) / 1_048_576, stats.bytesLeased))
    print(String(format: "{\"nominal_s\": %.3f, \"wall_s\": %.3f, \"cores\": %d, \"efficiency\": %.4f, \"jobs\": %d, \"allocations\": %d, \"bytes_leased_at_end\": %d}",
                 total, wall, cores, efficiency, jobs.count, stats.allocations, stats.bytesLeased))
}

/// One job: locks an input and an output buffer (sizes chosen by the job
/// number), makes `units` passes over 4 KiB windows that read the input and
/// write the output, emits the output and releases both.
private func bufferJob(_ job: Int, units: Int, sizes: [Int], slice: BufferSlice) {
    do {
        let input = try slice.lock(.bytes(sizes[job % sizes.count]))
        let output = try slice.lock(.bytes(sizes[(job / 2 + 1) % sizes.count]))
        let a = try slice.bytes(input), b = try slice.bytes(output)
        let window = 4096
        var hash = UInt64(truncatingIfNeeded: job) | 1
        for unit in 0..<units {
            // Within each buffer's first 64 KiB: a computation load (as
            // Lumiera's), not a test of the memory bus the two cores share.
            let from = unit * window % max(1, min(a.count - window + 1, 65_536))
            let to = unit * window % max(1, min(b.count - window + 1, 65_536))
            for i in stride(from: 0, to: min(window, a.count, b.count), by: 8) {
                hash = (hash ^ UInt64(a[from + i])) &* 0x100000001b3
                b[to + i] = UInt8(truncatingIfNeeded: hash >> 29)
            }
        }
        try slice.emit(output)
        try slice.release(input)
        try slice.release(output)
    } catch {
        fatalError("loadtest job \(job): \(error)")
    }
}
