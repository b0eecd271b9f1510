//! The command executor as a small standalone program (what the agent's own tests start;
//! `trireme executor` is the same code). Single-threaded runtime: startup stays cheap.

fn main() -> std::process::ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("trireme-executor: cannot start a runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(agent::command_executor::run()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("trireme-executor: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
