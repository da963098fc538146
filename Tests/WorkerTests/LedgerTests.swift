import Foundation
import Testing
@testable import Worker

func tempDir() -> String {
    let d = NSTemporaryDirectory() + "darkroom-test-\(UUID().uuidString)"
    try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
    return d
}

@Test func aRecordedJobIsFoundAfterARestart() throws {
    let dir = tempDir()
    let a = try Ledger(directory: dir)
    #expect(!a.contains("job-1"))
    try a.record("job-1")
    #expect(a.contains("job-1"))
    let b = try Ledger(directory: dir)            // a new process reading the same state dir
    #expect(b.contains("job-1"))
    #expect(!b.contains("job-2"))
}

@Test func aSiblingWorkersRecordIsSeen() throws {
    let dir = tempDir()
    let a = try Ledger(directory: dir), b = try Ledger(directory: dir)
    try a.record("from-a")
    #expect(b.contains("from-a"))
}

@Test func aTornLastLineIsIgnored() throws {
    let dir = tempDir()
    let a = try Ledger(directory: dir)
    try a.record("whole")
    let h = FileHandle(forWritingAtPath: a.path)!
    h.seekToEndOfFile(); h.write(Data("torn-no-newline".utf8)); h.closeFile()
    let b = try Ledger(directory: dir)
    #expect(b.contains("whole"))
    #expect(!b.contains("torn-no-newline"))
}

@Test func theLedgerStaysBounded() throws {
    let dir = tempDir()
    let a = try Ledger(directory: dir, capacity: 10)
    for i in 0..<35 { try a.record("j\(i)") }
    let lines = try String(contentsOfFile: a.path, encoding: .utf8).split(separator: "\n")
    #expect(lines.count <= 20)
    #expect(a.contains("j34"))
    let b = try Ledger(directory: dir, capacity: 10)
    #expect(b.contains("j34") && !b.contains("j0"))
}
