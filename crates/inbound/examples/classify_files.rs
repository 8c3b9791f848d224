//! Prints the reports of each given message file as JSON lines, one file after another.
//!
//! Usage: `cargo run -p tact-inbound --example classify_files -- FILE...`

fn main() -> std::io::Result<()> {
    for path in std::env::args_os().skip(1) {
        let raw = std::fs::read(&path)?;
        for report in tact_inbound::classify(&raw) {
            let line = serde_json::to_string(&report).unwrap_or_default();
            println!("{}\t{line}", std::path::Path::new(&path).display());
        }
    }
    Ok(())
}
