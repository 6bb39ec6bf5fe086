//! The `/v1` resources, one file each.

pub mod access;
pub mod audit;
pub mod catalog;
pub mod check;
pub mod consents;
pub mod destinations;
pub mod devices;
pub mod guardians;
pub mod households;
pub mod identifiers;
pub mod jurisdiction;
pub mod keys;
pub mod links;
pub mod receipts;
pub mod records;
pub mod requests;
pub mod signals;
pub mod tlog;
pub mod tokens;
pub mod transfer;
pub mod verifications;
