import ArgumentParser

@main
struct Darkroom: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "darkroom",
        abstract: "Submit and watch Darkroom jobs, generate locally, manage stored seeds and the broker topology.",
        subcommands: [
            Submit.self, Watch.self, TopologyCommand.self,
            Generate.self, ModelsCommand.self, SeedsCommand.self, Bench.self,
            // AutoscaleCommand.self goes here once Sources/darkroom/AutoscaleCommand.swift exists.
        ])
}
