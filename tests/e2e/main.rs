//! End-to-end tests of the `tact` binary: the command line, the HTTP API and the customer
//! pages in a headless browser.

mod browser;
mod cli;
mod examples;
mod harness;
mod http;
mod inbound;
mod smtp;
