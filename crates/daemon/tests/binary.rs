//! The binary's own smoke test. Its presence also makes `cargo test --workspace` build
//! `target/debug/tact`, which the end-to-end tests in tests/ run.

use std::process::Command;

#[test]
fn help_lists_every_command() {
    let output = Command::new(env!("CARGO_BIN_EXE_tact"))
        .arg("--help")
        .output()
        .unwrap();

    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for command in [
        "init",
        "import",
        "prefs",
        "signal",
        "case",
        "check",
        "campaign",
        "history",
        "explain",
        "serve",
        "backup",
        "rebuild-timelines",
    ] {
        assert!(
            help.contains(&format!("\n  {command} ")),
            "{command} missing from:\n{help}"
        );
    }
}
