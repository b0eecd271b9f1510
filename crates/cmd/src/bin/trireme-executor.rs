//! `trireme-executor`: the built-in command executor as a program of its own, the same
//! code as `trireme executor`. The agent prefers it (see `agent::Config::executor_command`)
//! because one executor starts per command task and this binary starts faster: it links
//! only the executor, not the master, the scheduler library and the etcd framework.

fn main() -> std::process::ExitCode {
    agent::command_executor::main("trireme-executor")
}
