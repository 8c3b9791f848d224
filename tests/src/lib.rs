//! End-to-end tests of the `tact` binary live in `e2e/`: one test binary whose harness
//! runs the real binary on a temporary configuration and database.
