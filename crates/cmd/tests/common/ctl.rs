//! Running `trireme ctl` as a process.

use std::process::Command;

use super::BIN;

/// Runs `trireme ctl <args> --master=<master>`: (exit status, stdout, stderr).
pub fn ctl(master: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let output = Command::new(BIN)
        .arg("ctl")
        .args(args)
        .arg(format!("--master={master}"))
        .output()
        .expect("run trireme ctl");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}
