import Testing
@testable import Worker

struct FakeTables: Codable, Sendable, Equatable { var timesteps: [Float] }

@Test func schedulesAreComputedOnceAndReusedAcrossARestart() throws {
    let dir = tempDir()
    var computed = 0
    let a = try ScheduleCache<FakeTables>(directory: dir)
    let t1 = a.tables(for: "ddim|50") { computed += 1; return FakeTables(timesteps: [980, 960]) }
    let t2 = a.tables(for: "ddim|50") { computed += 1; return FakeTables(timesteps: []) }
    #expect(t1 == t2 && computed == 1)
    #expect(a.counts.hits == 1 && a.counts.misses == 1)
    let b = try ScheduleCache<FakeTables>(directory: dir)   // restarted worker
    let t3 = b.tables(for: "ddim|50") { computed += 1; return FakeTables(timesteps: []) }
    #expect(t3 == t1 && computed == 1 && b.counts.diskHits == 1)
    _ = b.tables(for: "ddim|25") { computed += 1; return FakeTables(timesteps: [1]) }
    #expect(computed == 2)
}
