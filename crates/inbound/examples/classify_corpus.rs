//! Classifies every file under the given folders and prints the count per class, per
//! folder and in total, and the files that no rule recognised.
//!
//! Usage: `cargo run --release -p tact-inbound --example classify_corpus -- DIR...`

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tact_inbound::{Class, classify};

const CLASSES: [Class; 5] = [
    Class::HardBounce,
    Class::SoftBounce,
    Class::Complaint,
    Class::AutoReply,
    Class::NotReturned,
];

fn main() -> std::io::Result<()> {
    let roots: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    if roots.is_empty() {
        eprintln!("usage: classify_corpus DIR...");
        std::process::exit(2);
    }
    let mut per_folder: BTreeMap<String, BTreeMap<Class, usize>> = BTreeMap::new();
    let mut unrecognised = Vec::new();
    let mut files = 0;
    for root in &roots {
        for path in list_messages(root)? {
            let raw = std::fs::read(&path)?;
            let reports = classify(&raw);
            let class = message_class(&reports);
            let folder = folder_label(root, &path);
            *per_folder
                .entry(folder)
                .or_default()
                .entry(class)
                .or_default() += 1;
            if class == Class::NotReturned {
                unrecognised.push(path.display().to_string());
            }
            files += 1;
        }
    }
    print_table(&per_folder, files);
    println!("\nnot_returned (no bounce, complaint or auto-reply recognised):");
    for path in unrecognised {
        println!("  {path}");
    }
    Ok(())
}

/// Returns the class of a whole message: hard when any report is hard, because a notice
/// may mix hard and soft recipients, and otherwise the class of its first report.
fn message_class(reports: &[tact_inbound::Report]) -> Class {
    if reports
        .iter()
        .any(|report| report.class == Class::HardBounce)
    {
        return Class::HardBounce;
    }
    reports
        .first()
        .map_or(Class::NotReturned, |report| report.class)
}

fn print_table(per_folder: &BTreeMap<String, BTreeMap<Class, usize>>, files: usize) {
    let header: Vec<&str> = CLASSES.iter().map(|class| class.as_str()).collect();
    println!("| folder | files | {} |", header.join(" | "));
    println!("|---|---:|{}", "---:|".repeat(CLASSES.len()));
    let mut totals = BTreeMap::new();
    for (folder, counts) in per_folder {
        let cells: Vec<String> = CLASSES
            .iter()
            .map(|class| counts.get(class).copied().unwrap_or(0).to_string())
            .collect();
        let folder_files: usize = counts.values().sum();
        println!("| {folder} | {folder_files} | {} |", cells.join(" | "));
        for (class, count) in counts {
            *totals.entry(*class).or_insert(0) += count;
        }
    }
    let cells: Vec<String> = CLASSES
        .iter()
        .map(|class| totals.get(class).copied().unwrap_or(0).to_string())
        .collect();
    println!("| total | {files} | {} |", cells.join(" | "));
}

/// Names the folder of `path` relative to `root`, with the root's own name in front.
fn folder_label(root: &Path, path: &Path) -> String {
    let parent = path.parent().unwrap_or(root);
    let relative = parent.strip_prefix(root).unwrap_or(parent);
    let root_name = root
        .file_name()
        .map_or_else(String::new, |name| name.to_string_lossy().into_owned());
    if relative.as_os_str().is_empty() {
        root_name
    } else {
        format!("{root_name}/{}", relative.display())
    }
}

fn list_messages(root: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder)? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "eml") {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}
