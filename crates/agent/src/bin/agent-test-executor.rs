//! The command executor as a program for the agent crate's own tests (they cannot see the
//! binaries of the `cmd` crate, which ships it as `trireme-executor`).

fn main() -> std::process::ExitCode {
    agent::command_executor::main("trireme-executor")
}
