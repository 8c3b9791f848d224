//! The shipped examples end to end: the Online Retail pipeline on a slice of the real file,
//! and `tact analyze` on a slice of the real Bank Marketing file, each checked against
//! counts made here from the raw data.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use crate::harness::Workspace;

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives in the repository")
        .to_owned()
}

/// The first `rows` data lines of a file, with its header.
fn head_lines(reader: impl std::io::Read, rows: usize) -> String {
    let mut text = String::new();
    for line in BufReader::new(reader).lines().take(rows + 1) {
        text.push_str(&line.expect("readable line"));
        text.push('\n');
    }
    text
}

fn path_text(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

#[test]
fn online_retail_slice_end_to_end() {
    let workspace = Workspace::new();
    let example = repository().join("examples/online-retail");
    std::fs::copy(example.join("tact.toml"), workspace.config()).expect("config copied");
    let gzip = std::fs::File::open(example.join("online_retail.csv.gz")).expect("data set");
    // The first 5,000 invoice lines: 1 and 2 December 2010.
    let slice = head_lines(flate2::read::GzDecoder::new(gzip), 5_000);
    let input = workspace.write("slice.csv", &slice);
    let data = workspace.path().join("data");

    let converted = workspace.run_ok(&[
        "convert",
        "online-retail",
        path_text(&input),
        "--out",
        path_text(&data),
    ]);
    let simulated = workspace.run_ok(&[
        "simulate",
        "--from",
        "2010-12-01T00:00:00Z",
        "--to",
        "2010-12-15T00:00:00Z",
        "--plan",
        path_text(&example.join("plan.toml")),
        "--customers",
        path_text(&data.join("customers.csv")),
        "--signals",
        path_text(&data.join("signals.csv")),
    ]);

    // Counted from the slice with a separate script: 70 cancellation lines, 1,205 lines
    // without a customer, 3,725 sale lines from 179 customers in 248 invoices, of which 6
    // start at the same minute as another invoice of the same customer, and 18 customers
    // whose only lines are cancellations.
    for line in [
        "rows read:                  5000",
        "sale lines used:            3725",
        "cancellation lines skipped: 70 (lines 143, 156, 237, 238, 239, …)",
        "lines without customer:     1205 (lines 624, 1445, 1446, 1447, 1448, …)",
        "malformed rows:             0",
        "customers without a sale:   18",
        "customers written:          179 (0 of unknown country, given Europe/London)",
        "purchases written:          242 (total value 91039.42; 6 invoices merged into \
         another of the same customer and minute)",
    ] {
        assert!(
            converted.contains(line),
            "missing {line:?} in:\n{converted}"
        );
    }
    for line in [
        "  customers imported: 179",
        "  signals stored:     242",
        "  customer rows rejected: 0",
        "  signal rows rejected: 0",
        "  sales            103       103         0         0         0",
        "  value            358         0       179       179         0",
        "  survey           179        76       103         0         0",
        "  emails sent:        179",
        "  files in Maildir:   179 (equal to emails sent)",
    ] {
        assert!(
            simulated.contains(line),
            "missing {line:?} in:\n{simulated}"
        );
    }
    let files = std::fs::read_dir(workspace.path().join("outbox/new"))
        .expect("Maildir")
        .count();
    assert_eq!(files, 179);
}

/// Per contact number k: customers with at least k calls, and customers who subscribed at
/// call k, counted straight from the semicolon-separated file.
fn bank_counts(csv: &str, max_contact: usize) -> Vec<(u64, u64)> {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().expect("header").split(';').collect();
    let column = |name: &str| {
        let quoted = format!("\"{name}\"");
        header.iter().position(|h| *h == quoted).expect("column")
    };
    let (campaign, subscribed) = (column("campaign"), column("y"));
    let mut counts = vec![(0, 0); max_contact];
    for line in lines {
        let cells: Vec<&str> = line.split(';').collect();
        let calls: usize = cells[campaign].parse().expect("campaign count");
        for (k, count) in counts.iter_mut().enumerate().take(calls.min(max_contact)) {
            count.0 += 1;
            if k + 1 == calls && cells[subscribed] == "\"yes\"" {
                count.1 += 1;
            }
        }
    }
    counts
}

#[test]
fn bank_marketing_rates_match_raw_file() {
    let workspace = Workspace::new();
    let raw = std::fs::File::open(repository().join("examples/bank-marketing/bank-full.csv"))
        .expect("data set");
    let slice = head_lines(raw, 5_000);
    let input = workspace.write("bank.csv", &slice);
    let data = workspace.path().join("data");

    workspace.run_ok(&[
        "convert",
        "bank-marketing",
        path_text(&input),
        "--out",
        path_text(&data),
    ]);
    for (kind, file) in [
        ("customers", "customers.csv"),
        ("contacts", "contacts.csv"),
        ("signals", "signals.csv"),
    ] {
        workspace.run_ok(&["import", kind, path_text(&data.join(file))]);
    }
    let analysed = workspace.run_ok(&["analyze", "--channel", "phone", "--purpose", "sales"]);

    let expected = bank_counts(&slice, 5);
    for (index, (reached, responded)) in expected.into_iter().enumerate() {
        let rate = responded as f64 / reached as f64 * 100.0;
        let row = format!("{:>7} {reached:>8} {responded:>10} {rate:>6.2}%", index + 1);
        assert!(analysed.contains(&row), "missing {row:?} in:\n{analysed}");
    }
    assert!(analysed.contains("customers contacted: 5000"), "{analysed}");
}
