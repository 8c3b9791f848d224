//! End-to-end tests of the `tact` binary: the command line, the HTTP API, the customer
//! pages in a headless browser, and faults, hostile input and attacks.

mod browser;
mod cli;
mod examples;
mod faults;
mod fuzz_api;
mod harness;
mod hostile;
mod http;
mod inbound;
mod security;
mod smtp;
