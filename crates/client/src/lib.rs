//! A Rust SDK for Consentry.
//!
//! - [`verify`]: verify receipts and exported ledgers offline, with nothing but the published JWKS. Always
//!   available; pure.
//! - [`device`]: [`DeviceConsent`], a device's signed consent snapshot, verified and decided offline with
//!   the server's own rules. Always available; pure.
//! - With the `http` feature (on by default): a typed client for services that turns problem responses
//!   into `Error::Problem` with their stable `code`.
//!
//! ```no_run
//! # #[cfg(feature = "http")]
//! # async fn demo() -> Result<(), consentry_client::Error> {
//! use consentry_client::{Change, CheckRequest, Client, RecordConsents};
//!
//! let client = Client::new("http://127.0.0.1:8080", "csk_...")?;
//! client
//!     .record_consents("user-42", &RecordConsents::under_notice("marketing.direct")
//!         .change(Change::grant("marketing.direct").channels(["email"])))
//!     .await?;
//! let decision = client.check(&CheckRequest::new("user-42", "marketing.direct").channel("email")).await?;
//! assert!(decision.allowed);
//! # Ok(()) }
//! ```

pub mod device;
pub mod verify;

pub use device::DeviceConsent;

#[cfg(feature = "http")]
mod http;
#[cfg(feature = "http")]
pub use http::*;
