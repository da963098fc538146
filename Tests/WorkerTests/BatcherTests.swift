import Testing
@testable import Worker

typealias B = Batcher<String>

@Test func compatibleJobsWithinTheWindowRunAsOneBatch() {
    var b = B(limits: ["small": .init(maxBatch: 8, windowMs: 200)])
    for i in 0..<3 { b.add("j\(i)", className: "small", key: "k", nowMs: Int64(i * 10)) }
    #expect(b.next(nowMs: 100) == nil)                       // window not over, batch not full
    #expect(b.msUntilReady(nowMs: 100) == 100)
    let batch = b.next(nowMs: 200)
    #expect(batch?.items == ["j0", "j1", "j2"])
    #expect(b.count == 0)
}

@Test func aLoneJobWaitsAtMostTheWindow() {
    var b = B(limits: ["small": .init(maxBatch: 8, windowMs: 50)])
    b.add("solo", className: "small", key: "k", nowMs: 1000)
    #expect(b.next(nowMs: 1049) == nil)
    #expect(b.next(nowMs: 1050)?.items == ["solo"])
}

@Test func eightCompatibleJobsRunInCeilOfEightOverMaxBatchBatches() {
    var b = B(limits: ["small": .init(maxBatch: 3, windowMs: 200)])
    for i in 0..<8 { b.add("j\(i)", className: "small", key: "k", nowMs: 0) }
    var sizes: [Int] = []
    while let batch = b.next(nowMs: 0) { sizes.append(batch.items.count) }
    #expect(sizes == [3, 3])                                 // full batches go at once
    sizes += [b.next(nowMs: 200)?.items.count ?? 0]          // the remainder after the window
    #expect(sizes == [3, 3, 2])
}

@Test func incompatibleJobsFormTheirOwnBatchesOldestFirst() {
    var b = B(limits: ["small": .init(maxBatch: 4, windowMs: 0)])
    b.add("a1", className: "small", key: "A", nowMs: 0)
    b.add("b1", className: "small", key: "B", nowMs: 1)
    b.add("a2", className: "small", key: "A", nowMs: 2)
    #expect(b.next(nowMs: 5)?.items == ["a1", "a2"])
    #expect(b.next(nowMs: 5)?.items == ["b1"])
}

@Test func aBusyClassCannotStarveAnother() {
    var b = B(limits: ["small": .init(maxBatch: 1, windowMs: 0), "large": .init(maxBatch: 1, windowMs: 0)])
    for i in 0..<10 { b.add("s\(i)", className: "small", key: "k", nowMs: 0) }
    b.add("L", className: "large", key: "k", nowMs: 5)
    let order = (0..<4).compactMap { _ in b.next(nowMs: 10)?.items.first }
    #expect(order.contains("L"))
    #expect(order.firstIndex(of: "L")! <= 1)
}

@Test func weightsShareTurnsBetweenClasses() {
    var b = B(limits: ["a": .init(maxBatch: 1, windowMs: 0, weight: 3), "b": .init(maxBatch: 1, windowMs: 0, weight: 1)])
    for i in 0..<20 { b.add("a\(i)", className: "a", key: "k", nowMs: 0); b.add("b\(i)", className: "b", key: "k", nowMs: 0) }
    let picks = (0..<16).compactMap { _ in b.next(nowMs: 1)?.className }
    #expect(picks.filter { $0 == "a" }.count == 12)
}

@Test func removedItemsLeaveTheQueue() {
    var b = B(limits: ["small": .init(maxBatch: 4, windowMs: 0)])
    b.add("keep", className: "small", key: "k", nowMs: 0)
    b.add("drop", className: "small", key: "k", nowMs: 0)
    #expect(b.remove { $0 == "drop" } == ["drop"])
    #expect(b.next(nowMs: 0)?.items == ["keep"])
}
