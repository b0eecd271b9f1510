//! The command executor as a small standalone program (what the agent's own tests start;
//! `trireme executor` is the same code).

fn main() -> std::process::ExitCode {
    match agent::command_executor::run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("trireme-executor: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
