//! Integration tests of tact-storage on real database files.

mod common;

mod consent;
mod crash;
mod customers;
mod import;
mod outbox;
mod pending;
mod schema;
mod timelines;
mod views;
