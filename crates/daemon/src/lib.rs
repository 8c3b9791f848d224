//! The `tact` binary: command line, scheduler, outbox worker and HTTP server.
//!
//! It composes the rules engine (`tact-domain`), the SQLite store (`tact-storage`) and the
//! channels (`tact-delivery`) and holds no business rule of its own: every decision comes
//! from `tact_domain::decide` or the domain's batch planner.
//!
//! - [`cli`]: the clap definitions; [`commands`]: one module per subcommand.
//! - [`config`]: `tact.toml` and its `TACT_*` overrides; [`init`]: `tact init`.
//! - [`clock`]: the one source of the current time.
//! - [`scheduler`]: campaigns, deferred deliveries and the outbox worker.
//! - [`server`]: the HTTP API and the customer pages.

pub mod analyze;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod convert;
pub mod inbound;
pub mod init;
pub mod ops;
pub mod scheduler;
pub mod server;
pub mod simulate;
