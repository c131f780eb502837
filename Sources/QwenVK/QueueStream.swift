import Dispatch
import Foundation

/// Runs `work` on `queue` and streams what it emits, then `finished(result)`; a thrown error ends the stream
/// with that error. `emit` yields one event and returns false once the consumer is gone (its task cancelled,
/// the stream dropped), so that the work stops after its current step instead of running on unseen.
func streamOnQueue<Event, Result>(_ queue: DispatchQueue, finished: @escaping (Result) -> Event,
                                  work: @escaping (_ emit: (Event) -> Bool) throws -> Result)
    -> AsyncThrowingStream<Event, Error> {
    AsyncThrowingStream { continuation in
        let cancelled = StreamCancellation()
        continuation.onTermination = { _ in cancelled.set() }
        queue.async {
            do {
                let result = try work { event in
                    continuation.yield(event)
                    return !cancelled.isSet
                }
                continuation.yield(finished(result))
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
    }
}

private final class StreamCancellation: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.lock(); value = true; lock.unlock() }
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
}
