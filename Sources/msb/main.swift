import Glibc
import MSBCommands
import MSBSupervisor

// The executable only dispatches: the supervisor when started as `msb _supervise NAME`, a
// template's memory keeper as `msb _keep-template DIR`,
// otherwise the CLI (which lives in MSBCommands so tests can import it).
let arguments = Array(CommandLine.arguments.dropFirst())
if arguments.first == SupervisorMain.commandName {
    exit(SupervisorMain.run(Array(arguments.dropFirst())))
}
if arguments.first == TemplateKeeper.commandName {
    exit(TemplateKeeper.run(Array(arguments.dropFirst())))
}
exit(CLI.main(arguments))
