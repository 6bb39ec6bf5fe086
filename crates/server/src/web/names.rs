//! The catalogue's names for the keys a page shows (purposes, channels, categories, recipients, collection
//! points), in the words the catalogue gives them.

use consentry_core::catalog::Catalog;

/// The catalogue's names for its keys (the key itself where the catalogue has no such entry).
pub struct Names<'c>(pub &'c Catalog);

impl Names<'_> {
    pub fn purpose<'a>(&'a self, key: &'a str) -> &'a str {
        self.0.purpose(key).map_or(key, |p| p.name.as_str())
    }

    pub fn channel<'a>(&'a self, key: &'a str) -> &'a str {
        self.0.channel(key).map_or(key, |c| c.name.as_str())
    }

    pub fn category<'a>(&'a self, key: &'a str) -> &'a str {
        self.0.category(key).map_or(key, |c| c.name.as_str())
    }

    pub fn collection_point<'a>(&'a self, key: &'a str) -> &'a str {
        self.0.collection_point(key).map_or(key, |c| c.name.as_str())
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
        join(keys.iter().map(|k| self.0.recipient(k).map_or(k.as_str(), |r| r.name.as_str())))
    }
}

fn join<'a>(names: impl Iterator<Item = &'a str>) -> String {
    names.collect::<Vec<_>>().join(", ")
}
