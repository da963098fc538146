import Foundation
import Testing
@testable import Worker

@Test func aStoredSeedComesBackIdentical() throws {
    let store = try SeedStore(directory: tempDir())
    let noise: [Float] = (0..<96).map { i -> Float in Float(i) * 0.25 - 3 }
    try store.save(name: "good.one", noise: noise, shape: [2, 3, 4, 4], seed: 42, model: "tiny", width: 4, height: 4)
    let (entry, back) = try store.load(name: "good.one")
    #expect(back == noise)
    #expect(entry.shape == [2, 3, 4, 4] && entry.seed == "42" && entry.model == "tiny")
    #expect(try store.list().map(\.name) == ["good.one"])
}

@Test(arguments: ["../escape", ".hidden", "a/b", "", String(repeating: "x", count: 65), "..", "trailing."])
func seedNamesThatCouldEscapeOrHideAreRefused(_ name: String) throws {
    let store = try SeedStore(directory: tempDir())
    #expect(throws: WorkerError.self) {
        try store.save(name: name, noise: [0], shape: [1, 1, 1, 1], seed: 1, model: "m", width: 1, height: 1)
    }
    #expect(throws: WorkerError.self) { try store.load(name: name) }
}

@Test func aMissingSeedIsAClearError() throws {
    let store = try SeedStore(directory: tempDir())
    do {
        _ = try store.load(name: "nope")
        Issue.record("expected an error")
    } catch let e as WorkerError {
        #expect(e.message.contains("no stored seed named \"nope\""))
    }
}

@Test func exportImportAndRemoveRoundTrip() throws {
    let a = try SeedStore(directory: tempDir()), b = try SeedStore(directory: tempDir())
    try a.save(name: "s1", noise: [1, 2, 3, 4], shape: [1, 1, 2, 2], seed: 7, model: "m", width: 2, height: 2)
    let file = tempDir() + "/s1.safetensors"
    try a.exportFile(name: "s1", to: file)
    try b.importFile(file, as: "copied")
    #expect(try b.load(name: "copied").noise == [1, 2, 3, 4])
    try b.remove(name: "copied")
    #expect(try b.list().isEmpty)
    #expect(throws: WorkerError.self) { try b.importFile("/etc/hostname", as: "bad") }
}
