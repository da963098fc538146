import Foundation
import Testing
@testable import Worker

/// A text-to-image folder in `models` is refused at load with one line that says what it is and what runs it.
@Test func aTextToImageFolderIsRefusedAtLoadWithOneLine() throws {
    for folder in ["sana-pipeline", "pixart-sigma-pipeline"] {
        let path = fixtureModels + "/sana/" + folder
        let error = #expect(throws: WorkerError.self) { try Engine.load(name: folder, path: path) }
        #expect(error?.message.contains("does not serve text models yet") == true)
        #expect(error?.message.contains("darkroom generate") == true && error?.message.contains("\n") == false)
    }
}
