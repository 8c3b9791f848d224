//! The error type of this crate. [`crate::classify`] never fails, so only parsing a class
//! name returns it.

/// Errors from parsing values of this crate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A class name that matches none of the five classes.
    #[error(
        "unknown returned-mail class {name:?}; use one of hard_bounce, soft_bounce, \
         complaint, auto_reply or not_returned"
    )]
    UnknownClass {
        /// The name as given.
        name: String,
    },
}
