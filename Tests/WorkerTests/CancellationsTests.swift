import Foundation
import Testing
@testable import Worker

@Test func aCancelIsRememberedUntilItsTTLRunsOut() {
    let c = Cancellations(ttl: 10)
    let t0 = Date()
    c.cancel("job", now: t0)
    #expect(c.isCancelled("job", now: t0.addingTimeInterval(5)))
    #expect(!c.isCancelled("job", now: t0.addingTimeInterval(11)))
    #expect(!c.isCancelled("other", now: t0))
}

@Test func cancellationsStayBounded() {
    let c = Cancellations(ttl: 1000, capacity: 3)
    let t0 = Date()
    for i in 0..<5 { c.cancel("j\(i)", now: t0.addingTimeInterval(Double(i))) }
    #expect(c.isCancelled("j4", now: t0.addingTimeInterval(5)))
    #expect(!c.isCancelled("j0", now: t0.addingTimeInterval(5)))
}
