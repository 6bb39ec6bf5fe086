//! The state every handler and page shares: the service layer's [`Services`], passed in (never global).
//! A type of this crate, so the credential extractors can be implemented for it.

use std::ops::Deref;

use consentry_service::Services;

#[derive(Clone)]
pub struct AppState(pub Services);

impl Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}
