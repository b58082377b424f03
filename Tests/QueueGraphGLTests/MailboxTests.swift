import Foundation
@testable import QueueGraphGL
import QueueGraphCore
import Testing

/// The render command mailbox's rules, without GL: the test plays the owner thread.
@Suite("Render command mailbox")
struct MailboxTests {
    let image = CPUImage(width: 1, height: 1, pixels: [7])

    @Test("latest-value slots: a newer upload, present or screenshot supersedes the pending one, counted as coalesced")
    func coalescingPerSlot() {
        let mailbox = RenderMailbox()
        let uploads = (0..<3).map { i in mailbox.post(.upload(CPUImage(width: 1, height: 1, pixels: [UInt32(i)]))) }
        let presents = (0..<4).map { _ in mailbox.post(.present(image: nil)) }
        let shots = (0..<2).map { i in mailbox.post(.screenshot(path: "/tmp/\(i).png", image: nil)) }
        #expect(uploads.dropLast().allSatisfy { $0.outcome == .failed(.superseded) })
        #expect(presents.dropLast().allSatisfy { $0.outcome == .failed(.superseded) })
        #expect(shots[0].outcome == .failed(.superseded))
        let taken = mailbox.take()
        #expect(taken.map(\.command) == [
            .upload(CPUImage(width: 1, height: 1, pixels: [2])), .screenshot(path: "/tmp/1.png", image: nil), .present(image: nil),
        ])
        for request in taken { mailbox.complete(request, .success(nil)) }
        let stats = mailbox.statistics()
        #expect(stats.inputsAccepted == 3 && stats.inputsReplaced == 2)
        #expect(stats.previewSkips == 3)
        #expect(stats[.screenshot].coalesced == 1 && stats.screenshotsWritten == 1)
        #expect(stats.total.balances && stats.total.pending == 0)
    }

    @Test("a preview never replaces a screenshot: they are separate slots")
    func previewKeepsScreenshot() {
        let mailbox = RenderMailbox()
        let shot = mailbox.post(.screenshot(path: "/tmp/s.png", image: 5))
        mailbox.post(.present(image: 6))
        mailbox.post(.present(image: 7))
        #expect(shot.outcome == nil)
        #expect(mailbox.take().map(\.command) == [.screenshot(path: "/tmp/s.png", image: 5), .present(image: 7)])
    }

    @Test("output requests are FIFO and never coalesced")
    func outputFIFO() {
        let mailbox = RenderMailbox()
        let requests = (0..<5).map { _ in mailbox.post(.output) }
        mailbox.post(.upload(image))
        let taken = mailbox.take()
        #expect(taken.first?.command == .upload(image))   // served before the outputs
        #expect(Array(taken.dropFirst()).map(ObjectIdentifier.init) == requests.map(ObjectIdentifier.init))
        for (i, request) in taken.dropFirst().enumerated() {
            mailbox.complete(request, .success(CPUImage(width: 1, height: 1, pixels: [UInt32(i)])))
        }
        for (i, request) in requests.enumerated() {
            #expect(request.outcome == .completed(image: CPUImage(width: 1, height: 1, pixels: [UInt32(i)])))
        }
        #expect(mailbox.statistics()[.output].coalesced == 0)
        #expect(mailbox.statistics()[.output].executed == 5)
    }

    @Test("the output FIFO is bounded: a newer request drops the oldest, which fails as overflowed and is counted")
    func outputFIFOBounded() {
        let mailbox = RenderMailbox(outputCapacity: 3)
        let requests = (0..<5).map { _ in mailbox.post(.output) }
        #expect(requests.prefix(2).allSatisfy { $0.outcome == .failed(.overflowed) })
        let taken = mailbox.take()
        #expect(taken.map(ObjectIdentifier.init) == requests.suffix(3).map(ObjectIdentifier.init))
        for request in taken { mailbox.complete(request, .success(nil)) }
        let counts = mailbox.statistics()[.output]
        #expect(counts.overflowed == 2 && counts.executed == 3 && counts.balances)
    }

    @Test("a preview is skipped, and counted, while outputs are under pressure: a backlog, or one past half its timeout")
    func previewSkippedUnderPressure() {
        let mailbox = RenderMailbox()
        mailbox.post(.output)
        mailbox.post(.output)
        let backlogged = mailbox.post(.present(image: nil))
        #expect(!mailbox.take().contains { $0 === backlogged })
        #expect(backlogged.outcome == .failed(.skipped))
        let output = mailbox.post(.output, timeoutNanoseconds: 1_000_000_000)
        let late = mailbox.post(.present(image: nil))
        let taken = mailbox.take(now: output.postedAt + 600_000_000)   // the output has waited 0.6 of its second
        #expect(taken.map(ObjectIdentifier.init) == [ObjectIdentifier(output)] && late.outcome == .failed(.skipped))
        let calm = mailbox.post(.present(image: nil))
        #expect(mailbox.take().map(ObjectIdentifier.init) == [ObjectIdentifier(calm)])
        let stats = mailbox.statistics()
        #expect(stats[.present].skipped == 2 && stats.previewSkips == 2)
    }

    @Test("the GL thread waiting on its own request is refused at once, counted, and the request still runs")
    func selfWaitRefused() {
        let mailbox = RenderMailbox()
        mailbox.bindOwnerThread()   // this test plays the owner thread
        let request = mailbox.post(.output)
        #expect(mailbox.wait(request) == .failed(.selfWait))
        #expect(request.outcome == nil && mailbox.statistics().selfWaits == 1)
        let taken = mailbox.take()
        #expect(taken.map(ObjectIdentifier.init) == [ObjectIdentifier(request)])
        mailbox.complete(request, .success(nil))
        #expect(request.outcome == .completed(image: nil))
    }

    @Test("a request that runs past the budget is counted as over budget; one within it is not")
    func overBudget() {
        for (budget, expected) in [(UInt64(0), 1), (3_600_000_000_000, 0)] {
            let mailbox = RenderMailbox(budgetNanoseconds: budget)
            mailbox.post(.reset(.inputs))
            for request in mailbox.take() { mailbox.complete(request, .success(nil)) }
            #expect(mailbox.statistics()[.reset].overBudget == expected)
        }
    }

    @Test("pending resets merge to the strongest scope, whatever the order")
    func resetMerge() {
        for order in [[ResetScope.inputs, .shaders, .inputs], [.shaders, .inputs], [.inputs, .inputs],
                      [.temporalHistory, .inputs, .shaderFeedback], [.shaderFeedback, .temporalHistory], [.inputs, .temporalHistory]] {
            let mailbox = RenderMailbox()
            let requests = order.map { mailbox.post(.reset($0)) }
            let taken = mailbox.take()
            #expect(taken.count == 1)
            #expect(taken.first?.command == .reset(order.max()!))
            #expect(taken.first === requests.last)
            #expect(requests.dropLast().allSatisfy { $0.outcome == .failed(.superseded) })
            #expect(mailbox.statistics()[.reset].coalesced == order.count - 1)
        }
    }

    @Test("a request times out while the owner thread is stalled, and is never run after")
    func timeoutWhileStalled() {
        let mailbox = RenderMailbox()
        let ownerBusy = DispatchSemaphore(value: 0)
        let ownerDone = DispatchSemaphore(value: 0)
        let ran = Locked<[RenderCommand]>([])
        Thread {
            ownerBusy.wait()   // the owner is stuck in a long frame
            for request in mailbox.take() {
                ran.withLock { $0.append(request.command) }
                mailbox.complete(request, .success(nil))
            }
            ownerDone.signal()
        }.start()
        let request = mailbox.post(.output, timeoutNanoseconds: 20_000_000)
        #expect(mailbox.wait(request) == .failed(.timedOut))
        ownerBusy.signal()
        ownerDone.wait()
        #expect(ran.withLock { $0 }.isEmpty)
        let stats = mailbox.statistics()
        #expect(stats[.output].timedOut == 1 && stats[.output].executed == 0)
        #expect(stats.total.balances)
    }

    @Test("a request nobody waits for still times out: the owner fails it instead of running it")
    func timeoutWithoutWaiter() {
        let mailbox = RenderMailbox()
        let request = mailbox.post(.screenshot(path: "/tmp/x.png", image: nil), timeoutNanoseconds: 1)
        let taken = mailbox.take(now: monotonicNanoseconds() + 1_000)
        #expect(taken.isEmpty)
        #expect(request.outcome == .failed(.timedOut))
    }

    @Test("a started request is waited for past its timeout and completes once")
    func startedRequestCompletes() {
        let mailbox = RenderMailbox()
        let request = mailbox.post(.output, timeoutNanoseconds: 10_000_000)
        let taken = mailbox.take()
        let finished = DispatchSemaphore(value: 0)
        Thread {
            usleep(30_000)   // runs past the timeout
            mailbox.complete(taken[0], .failure(.error("boom")))
            mailbox.complete(taken[0], .success(nil))   // a second completion is ignored
            finished.signal()
        }.start()
        #expect(mailbox.wait(request) == .failed(.error("boom")))
        finished.wait()
        #expect(request.outcome == .failed(.error("boom")))
        let counts = mailbox.statistics()[.output]
        #expect(counts.executed == 1 && counts.failed == 1 && counts.pending == 0, "the ignored completion was counted: \(counts)")
    }

    @Test("stop drains what is pending; later posts fail as stopped, counted as dropped")
    func stopDrainsAndRefuses() {
        let woken = Locked(0)
        let mailbox = RenderMailbox { woken.withLock { $0 += 1 } }
        let early = mailbox.post(.output)
        let drained = mailbox.close()
        #expect(drained.map(ObjectIdentifier.init) == [ObjectIdentifier(early)])
        mailbox.complete(drained[0], .success(nil))
        let late = mailbox.post(.present(image: nil))
        #expect(late.outcome == .failed(.stopped))
        #expect(woken.withLock { $0 } == 1)   // the post after close did not wake anybody
        let stats = mailbox.statistics()
        #expect(stats[.present].dropped == 1 && stats.total.balances)
    }

    @Test("many posting threads against a serving thread: exactly one outcome per request, and the counters balance")
    func countersBalanceUnderLoad() {
        let mailbox = RenderMailbox(defaultTimeoutNanoseconds: 2_000_000)
        let stop = Locked(false)
        let served = DispatchSemaphore(value: 0)
        Thread {
            while !stop.withLock({ $0 }) {
                for request in mailbox.take() {
                    if case .reset = request.command { usleep(200) }   // now and then a slow command
                    mailbox.complete(request, .success(nil))
                }
                usleep(50)
            }
            for request in mailbox.close() { mailbox.complete(request, .success(nil)) }
            served.signal()
        }.start()
        let all = Locked<[RenderRequest]>([])
        DispatchQueue.concurrentPerform(iterations: 4) { worker in
            for i in 0..<500 {
                let command: RenderCommand = switch (worker + i) % 5 {
                case 0: .upload(CPUImage(width: 1, height: 1, pixels: [UInt32(i)]))
                case 1: .present(image: nil)
                case 2: .screenshot(path: "/tmp/\(i)", image: nil)
                case 3: .output
                default: .reset(i % 2 == 0 ? .inputs : .shaders)
                }
                let request = mailbox.post(command)
                all.withLock { $0.append(request) }
                if i % 50 == 0 { _ = mailbox.wait(request) }
            }
        }
        stop.withLock { $0 = true }
        served.wait()
        let requests = all.withLock { $0 }
        for request in requests { _ = mailbox.wait(request) }
        #expect(requests.allSatisfy { $0.outcome != nil })
        let stats = mailbox.statistics()
        let total = stats.total
        #expect(total.enqueued == 2000)
        #expect(total.balances, "\(total)")
        #expect(total.pending == 0)
        let succeeded = requests.count { if case .completed = $0.outcome { true } else { false } }
        #expect(succeeded == total.executed - total.failed)
        #expect(stats.wakeReasons.reduce(0, +) > 0)
    }
}
