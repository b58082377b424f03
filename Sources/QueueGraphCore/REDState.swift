/// The running state of random early drop for one queue: the average depth,
/// the arrivals since the last drop and a seeded random source.
///
/// A pure value: `shouldDrop` takes the depth an arrival sees and answers.
struct REDState {
    let parameters: RED
    private(set) var average = 0.0
    private var sinceLastDrop = 0
    private var random: SplitMix64

    init(_ parameters: RED) {
        self.parameters = parameters
        self.random = SplitMix64(seed: parameters.seed)
    }

    /// Updates the average with `depth` (the queue's depth as the buffer
    /// arrives) and decides whether to drop the arrival. A full queue always drops.
    mutating func shouldDrop(depth: Int, capacity: Int) -> Bool {
        average += parameters.weight * (Double(depth) - average)
        if depth >= capacity || average >= parameters.maxThreshold {
            sinceLastDrop = 0
            return true
        }
        guard average >= parameters.minThreshold else {
            sinceLastDrop = -1
            return false
        }
        sinceLastDrop += 1
        let pb = parameters.maxProbability * (average - parameters.minThreshold)
            / (parameters.maxThreshold - parameters.minThreshold)
        let denominator = 1 - Double(sinceLastDrop) * pb
        let pa = denominator <= 0 ? 1 : pb / denominator
        if random.nextUnitInterval() < pa {
            sinceLastDrop = 0
            return true
        }
        return false
    }
}

/// A small, fast, seedable pseudo-random generator (Steele, Lea & Flood 2014).
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    mutating func nextUnitInterval() -> Double { Double(next() >> 11) * 0x1p-53 }
}
