//! The ids linked into another subject, as this node knows them: old id → survivor. Loaded from the store
//! at start, updated by a link made here, and read again from the store by the follower (other nodes'
//! links). The check path asks it first through an atomic flag, so a node without links pays one load.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{PoisonError, RwLock};

#[derive(Debug, Default)]
pub struct Aliases {
    any: AtomicBool,
    map: RwLock<HashMap<String, String>>,
}

impl Aliases {
    /// The survivor `subject` was linked into, if it was.
    pub fn resolve(&self, subject: &str) -> Option<String> {
        if !self.any.load(Ordering::Acquire) {
            return None;
        }
        self.map.read().unwrap_or_else(PoisonError::into_inner).get(subject).cloned()
    }

    /// The subject `subject` names now: itself, or the survivor it was linked into.
    pub fn survivor(&self, subject: consentry_core::SubjectId) -> consentry_core::SubjectId {
        match self.resolve(subject.as_str()).map(consentry_core::SubjectId::new) {
            Some(Ok(survivor)) => survivor,
            _ => subject,
        }
    }

    /// Reads every alias from the store (at start, and on followers to learn of other nodes' links).
    /// Returns the aliases this node did not know before.
    pub async fn load(
        &self,
        store: &dyn consentry_store::Store,
    ) -> Result<Vec<consentry_core::SubjectId>, consentry_store::StoreError> {
        let links = store.subject_links().await?;
        let added =
            self.replace(links.iter().map(|(from, to)| (from.as_str().to_owned(), to.as_str().to_owned())));
        let added: std::collections::HashSet<String> = added.into_iter().collect();
        Ok(links.into_iter().map(|(from, _)| from).filter(|f| added.contains(f.as_str())).collect())
    }

    /// Replaces every alias (as read from the store); returns the old ids not known before.
    pub fn replace(&self, links: impl IntoIterator<Item = (String, String)>) -> Vec<String> {
        let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
        let fresh: HashMap<String, String> = links.into_iter().collect();
        let added = fresh.keys().filter(|k| !map.contains_key(*k)).cloned().collect();
        *map = fresh;
        self.any.store(!map.is_empty(), Ordering::Release);
        added
    }

    /// `from` now names `to`, and so does every id that named `from`.
    pub fn link(&self, from: &str, to: &str) {
        let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
        for survivor in map.values_mut() {
            if survivor == from {
                to.clone_into(survivor);
            }
        }
        map.insert(from.to_owned(), to.to_owned());
        self.any.store(true, Ordering::Release);
    }

    /// Forgets every alias of or to `subject` (it was erased).
    pub fn forget(&self, subject: &str) {
        let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
        map.retain(|from, to| from != subject && to != subject);
        self.any.store(!map.is_empty(), Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_follow_chains_and_erasures() {
        let a = Aliases::default();
        assert_eq!(a.resolve("x"), None);
        a.link("anon-1", "acct");
        a.link("acct", "acct-2");
        assert_eq!(a.resolve("anon-1").as_deref(), Some("acct-2"), "an alias of an alias names the survivor");
        assert_eq!(a.resolve("acct").as_deref(), Some("acct-2"));
        assert_eq!(a.resolve("acct-2"), None);
        a.forget("acct-2");
        assert_eq!(a.resolve("anon-1"), None);
        assert_eq!(a.replace([("p".to_owned(), "q".to_owned())]), ["p"]);
        assert_eq!(a.resolve("p").as_deref(), Some("q"));
        a.replace([]);
        assert_eq!(a.resolve("p"), None);
    }
}
