import ArgumentParser

@main
struct Darkroom: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "darkroom",
        abstract: "Submit and watch Darkroom jobs, generate locally, manage stored seeds, the broker topology and scaling.",
        subcommands: [
            Submit.self, Watch.self, TopologyCommand.self,
            Generate.self, TokenizeCommand.self, ModelsCommand.self, SeedsCommand.self, Bench.self, AutoscaleCommand.self, StatusCommand.self,
        ])
}
