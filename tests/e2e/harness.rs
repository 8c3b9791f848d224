//! Runs the real `tact` binary on a temporary folder with its own configuration, database
//! and Maildir, and starts `tact serve` on a free port of 127.0.0.1.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tact_delivery::token::{LinkKey, LinkPurpose};
use tact_storage::Store;
use tempfile::TempDir;

/// Maximum wait for the daemon to print its address or to stop.
const PROCESS_TIMEOUT: Duration = Duration::from_secs(30);

/// Two customers: Ann in Berlin and Bob in UTC.
pub const CUSTOMERS: &str = "external_id,name,email,phone,timezone,locale,account\n\
    c1,Ann Lee,ann@example.com,,Europe/Berlin,en,\n\
    c2,Bob Stone,bob@example.com,,UTC,en,\n";

/// Returns the `tact` binary next to this test binary (`target/debug/tact`).
pub fn tact_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary has a path");
    let debug = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary lives in target/<profile>/deps");
    let binary = debug.join(format!("tact{}", std::env::consts::EXE_SUFFIX));
    assert!(
        binary.exists(),
        "{} is missing; build it with `cargo build -p tact` (cargo test --workspace does)",
        binary.display()
    );
    binary
}

/// A folder with a fresh `tact.toml` made by `tact init`.
pub struct Workspace {
    dir: TempDir,
}

impl Workspace {
    /// Runs `tact init` in a new temporary folder.
    pub fn new() -> Workspace {
        let workspace = Workspace {
            dir: tempfile::tempdir().expect("temporary folder"),
        };
        let output = workspace.run(&["init"]);
        assert!(output.status.success(), "tact init failed: {output:?}");
        workspace
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Returns the configuration file.
    pub fn config(&self) -> PathBuf {
        self.path().join("tact.toml")
    }

    /// Appends `text` to the configuration; `[policy]` is its last table, so plain keys
    /// land in the policy.
    pub fn append_config(&self, text: &str) {
        let mut config = std::fs::read_to_string(self.config()).expect("config");
        config.push('\n');
        config.push_str(text);
        std::fs::write(self.config(), config).expect("config written");
    }

    /// Returns the value of a `key = "value"` line of the configuration.
    pub fn config_value(&self, key: &str) -> String {
        let config = std::fs::read_to_string(self.config()).expect("config");
        let prefix = format!("{key} = \"");
        config
            .lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .and_then(|rest| rest.strip_suffix('"'))
            .unwrap_or_else(|| panic!("no {key} in the configuration"))
            .to_owned()
    }

    /// Writes a file into the folder and returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path().join(name);
        std::fs::write(&path, text).expect("file written");
        path
    }

    /// Builds a `tact` command with this configuration and no `TACT_*` variable from outside.
    pub fn command(&self) -> Command {
        let mut command = Command::new(tact_binary());
        command
            .current_dir(self.path())
            .env("TACT_CONFIG", self.config());
        for (name, _) in std::env::vars() {
            if name.starts_with("TACT_") && name != "TACT_CONFIG" {
                command.env_remove(name);
            }
        }
        command
    }

    /// Runs `tact ARGS` to completion.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("tact runs")
    }

    /// Runs `tact ARGS`, checks it exits 0 and returns its standard output.
    pub fn run_ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "tact {args:?} failed with {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("UTF-8 output")
    }

    /// Imports [`CUSTOMERS`].
    pub fn import_customers(&self) {
        let file = self.write("customers.csv", CUSTOMERS);
        self.run_ok(&["import", "customers", file.to_str().expect("UTF-8 path")]);
    }

    /// Writes `tips.toml`, a template that greets the customer by name, and creates campaign
    /// 1 from it: "tips", for purpose value, to every customer.
    pub fn create_tips_campaign(&self) {
        let template = self.write(
            "tips.toml",
            "subject = \"Tips\"\ntext = \"Hello {{ name }},\\n\"\n",
        );
        self.run_ok(&[
            "campaign",
            "create",
            "--name",
            "tips",
            "--template",
            template.to_str().expect("UTF-8 path"),
            "--purpose",
            "value",
        ]);
    }

    /// Opens the database the binary writes.
    pub fn store(&self) -> Store {
        Store::open(self.path().join("tact.db")).expect("database opens")
    }

    /// Signs a link token for the customer, as a message would carry.
    pub fn token(&self, purpose: LinkPurpose, external_id: &str) -> String {
        let secret = self.config_value("secret_key");
        let key = LinkKey::new(secret.as_bytes()).expect("valid key");
        let customer = self
            .store()
            .customer_by_external_id(external_id)
            .expect("customer")
            .id;
        key.sign(purpose, customer, wall_clock())
    }

    /// Starts `tact serve` on a free port and waits until it listens.
    pub fn serve(&self) -> Server {
        self.serve_with(&[])
    }

    /// Starts `tact serve` with extra environment variables, which win over the defaults.
    pub fn serve_with(&self, environment: &[(&str, &str)]) -> Server {
        let log = std::fs::File::create(self.path().join("serve.log")).expect("log file");
        let mut child = self
            .command()
            .arg("serve")
            .env("TACT_HTTP_LISTEN", "127.0.0.1:0")
            .env("TACT_DELIVERY_POLL_INTERVAL", "1s")
            .env("TACT_LOG", "tact=debug,info")
            .envs(environment.iter().copied())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("tact serve starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = sender.send(line);
        });
        let line = receiver.recv_timeout(PROCESS_TIMEOUT).unwrap_or_default();
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| {
                let _ = child.kill();
                let log =
                    std::fs::read_to_string(self.path().join("serve.log")).unwrap_or_default();
                panic!("tact serve printed {line:?} instead of its address; log:\n{log}")
            })
            .to_owned();
        Server {
            child,
            url,
            token: self.config_value("api_token"),
            log: self.path().join("serve.log"),
        }
    }
}

/// Reads the wall clock, because the daemon under test runs on the system clock.
#[allow(clippy::disallowed_methods)]
pub fn wall_clock() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

/// A running `tact serve`; killed when dropped.
pub struct Server {
    child: Child,
    /// Base URL such as `http://127.0.0.1:41234`.
    pub url: String,
    /// The API token.
    pub token: String,
    log: PathBuf,
}

impl Server {
    /// Builds an HTTP client.
    pub fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .no_proxy()
            .build()
            .expect("client")
    }

    /// Returns the daemon's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM and waits for the exit.
    pub fn stop(mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "kill -TERM {pid} failed");
        let deadline = Instant::now() + PROCESS_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "tact serve did not stop; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
