//! The catalogue's names for the keys a page shows (purposes, channels, categories, recipients, collection
//! points), in the words the catalogue gives them in the page's language (its own where it has no
//! translation).

use consentry_core::catalog::Catalog;

/// The catalogue's names for its keys in a language (the key itself where the catalogue has no such
/// entry).
pub struct Names<'c>(pub &'c Catalog, pub &'static str);

impl Names<'_> {
    pub fn purpose<'a>(&'a self, key: &'a str) -> &'a str {
        self.0.purpose(key).map_or(key, |p| p.name_in(self.1))
    }

    pub fn channel<'a>(&'a self, key: &'a str) -> &'a str {
        self.0.channel(key).map_or(key, |c| c.name_in(self.1))
    }

    pub fn category<'a>(&'a self, key: &'a str) -> &'a str {
        self.0.category(key).map_or(key, |c| c.name_in(self.1))
    }

    pub fn jurisdiction<'a>(&'a self, key: &'a str) -> &'a str {
        self.0.jurisdiction(key).map_or(key, |j| j.name_in(self.1))
    }

    /// What an event is about: its purpose, or for a `locate` event, the place it set.
    pub fn subject_of<'a>(&'a self, e: &'a consentry_core::Event) -> &'a str {
        match (&e.jurisdiction, e.action) {
            (Some(j), consentry_core::Action::Locate) => self.jurisdiction(j),
            _ => self.purpose(&e.purpose),
        }
    }

    pub fn collection_point<'a>(&'a self, key: &'a str) -> &'a str {
        self.0.collection_point(key).map_or(key, |c| c.name_in(self.1))
    }

    /// Purposes' names, comma-separated.
    pub fn purposes(&self, keys: &[String]) -> String {
        join(keys.iter().map(|k| self.purpose(k)))
    }

    /// Channels' names, comma-separated.
    pub fn channels(&self, keys: &[String]) -> String {
        join(keys.iter().map(|k| self.channel(k)))
    }

    /// Data categories' names, comma-separated.
    pub fn categories(&self, keys: &[String]) -> String {
        join(keys.iter().map(|k| self.category(k)))
    }

    /// Recipients' names, comma-separated.
    pub fn recipients(&self, keys: &[String]) -> String {
        join(keys.iter().map(|k| self.0.recipient(k).map_or(k.as_str(), |r| r.name_in(self.1))))
    }
}

fn join<'a>(names: impl Iterator<Item = &'a str>) -> String {
    names.collect::<Vec<_>>().join(", ")
}
