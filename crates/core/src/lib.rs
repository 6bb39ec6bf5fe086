//! Consentry's domain: the catalogue, the consent ledger's events and hash chain, the decision engine and
//! the data subject request state machine.
//!
//! Architecture invariant: this crate does no I/O, spawns no threads and knows nothing of async, HTTP,
//! JSON shapes of the API or SQL. Everything here is a pure function or an in-memory data structure, so
//! that the same rules run on the server, in the CLI and (through the client crate) offline on devices.

pub mod catalog;
pub mod engine;
pub mod ids;
pub mod ledger;
pub mod link;
pub mod merkle;
pub mod note;
pub mod proof;
pub mod proven;
pub mod request;
pub mod signals;
pub mod snapshot;
pub mod time;

pub use catalog::{Basis, Catalog, CatalogDocument, CatalogProblem};
pub use engine::{
    DEFAULT_AGE_OF_CONSENT, Decision, Dimension, Engine, PurposeTally, Query, QueryError, Reason,
};
pub use ids::{InvalidId, Key, SubjectId};
pub use ledger::{Action, Event, NewEvent, Scope, Stance};
pub use request::{Refusal, RequestAction, RequestKind, RequestState, RequestStatus, TaskStatus, Transition};
pub use time::Timestamp;
