//! Bulk CSV import.
