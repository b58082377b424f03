import QueueGraphCore
#if canImport(Glibc)
import Glibc
#endif

/// Makes a sine tone as audio chunks of interleaved 16-bit samples (the
/// graph files' `tonesrc`, like GStreamer's `audiotestsrc`): `seconds` of
/// it (0: until stopped), as fast as downstream takes them. Timestamps
/// count samples from 0.
///
/// Threading: as `BufferProcessor` (its queue's scheduler thread).
public final class ToneSource: BufferSource, FormatAware {
    public let frequency: Double
    public let rate: Int
    public let channels: Int
    public let samplesPerChunk: Int
    public let seconds: Double
    public private(set) var samplesSent = 0

    public init(frequency: Double = 440, rate: Int = 48_000, channels: Int = 2, samplesPerChunk: Int = 1024, seconds: Double = 0) {
        (self.frequency, self.rate, self.channels, self.samplesPerChunk, self.seconds) = (frequency, rate, channels, samplesPerChunk, seconds)
    }

    public func negotiate(arriving: [LinkFormat]) -> [LinkFormat] { [.audio(AudioFormat(.s16, rate: rate, channels: channels))] }

    public func produce(context: ProcessContext) -> ProduceResult {
        let total = seconds > 0 ? Int(seconds * Double(rate)) : Int.max
        guard samplesSent < total else { return .endOfStream }
        let samples = min(samplesPerChunk, total - samplesSent)
        guard let buffer = context.acquireBuffer(size: AudioChunk.byteCount(format: .s16, channels: channels, samples: samples)) else {
            return .waitingForBuffer
        }
        let chunk = AudioChunk.make(in: buffer, format: .s16, rate: rate, channels: channels, samples: samples, timeBase: (1, Int32(rate)),
                                    pts: Int64(samplesSent), mediaTime: Int64(samplesSent) * 1_000_000_000 / Int64(rate))
        let out = UnsafeMutableRawPointer(chunk.plane(0)).assumingMemoryBound(to: Int16.self)
        for i in 0..<samples {
            let value = Int16(sin(2 * Double.pi * frequency * Double(samplesSent + i) / Double(rate)) * 12_000)
            for c in 0..<channels { out[i * channels + c] = value }
        }
        buffer.sequence = UInt64(samplesSent / samplesPerChunk)
        samplesSent += samples
        context.sendTo(0, buffer)
        return samplesSent >= total ? .endOfStream : .produced
    }
}
