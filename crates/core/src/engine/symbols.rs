//! The catalogue and the statements' scopes compiled to small integer symbols, so the rules compare
//! integers and never strings. Symbols are never reused: statements held keep their meaning across
//! catalogue versions.

use std::collections::HashMap;

use super::CapacityError;
use super::memory::{CHILD, JURISDICTION};
use crate::catalog::{Basis, Catalog, PurposeKind, Regime};
use crate::ids::parent_key;
use crate::ledger::Event;

/// Interned scope: sorted symbol ids per dimension; empty means the whole dimension.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub(super) struct ScopeDef {
    pub(super) categories: Box<[u32]>,
    pub(super) channels: Box<[u32]>,
    pub(super) recipients: Box<[u32]>,
}

#[derive(Debug, Default)]
pub(super) struct Interner {
    pub(super) ids: HashMap<Box<str>, u32, foldhash::fast::RandomState>,
    pub(super) names: Vec<Box<str>>,
}

impl Interner {
    pub(super) fn get(&self, name: &str) -> Option<u32> {
        self.ids.get(name).copied()
    }

    pub(super) fn intern(&mut self, name: &str) -> u32 {
        if let Some(id) = self.ids.get(name) {
            return *id;
        }
        let id = self.names.len() as u32;
        self.names.push(name.into());
        self.ids.insert(name.into(), id);
        id
    }

    pub(super) fn name(&self, id: u32) -> &str {
        self.names.get(id as usize).map_or("", |n| n)
    }
}

#[derive(Debug)]
pub(super) struct PurposeInfo {
    pub(super) basis: Basis,
    /// The purpose itself and then its ancestors, each with its depth (0 at the top).
    pub(super) chain: Box<[(u16, u8)]>,
    pub(super) categories: Box<[u32]>,
    pub(super) channels: Box<[u32]>,
    pub(super) recipients: Box<[u32]>,
    /// Of kind `sale` or `sharing`, or marked `sale_or_sharing`: never allowed for a known child.
    pub(super) child_protected: bool,
}

impl PurposeInfo {
    /// The purpose's own symbol.
    pub(super) fn id(&self) -> u16 {
        self.chain[0].0
    }
}

/// A purpose symbol, below [`CHILD`] and [`JURISDICTION`], which mark a subject's age and jurisdiction.
fn purpose_symbol(id: u32) -> Result<u16, CapacityError> {
    u16::try_from(id).ok().filter(|&id| id != JURISDICTION && id != CHILD).ok_or(CapacityError)
}

/// The current catalogue, compiled to symbol ids.
#[derive(Debug, Default)]
pub(super) struct Compiled {
    pub(super) purposes: Vec<Option<PurposeInfo>>,
    /// Per category symbol: itself and its ancestors.
    pub(super) categories: Vec<Option<Box<[u32]>>>,
    pub(super) channels: Vec<bool>,
    pub(super) recipients: Vec<bool>,
    pub(super) sale_or_sharing: Vec<u16>,
    /// Per jurisdiction symbol of the current catalogue: per purpose symbol, whether it is under opt-out
    /// there.
    pub(super) jurisdictions: Vec<Option<Box<[bool]>>>,
    /// Per jurisdiction symbol of the current catalogue: its age of digital consent, 0 where it sets none.
    pub(super) ages: Vec<u8>,
}

/// The age of digital consent where a subject has no jurisdiction, or theirs sets none (GDPR Art. 8(1)).
pub const DEFAULT_AGE_OF_CONSENT: u8 = 16;

#[derive(Debug, Default)]
pub(super) struct Shared {
    pub(super) purposes: Interner,
    pub(super) categories: Interner,
    pub(super) channels: Interner,
    pub(super) recipients: Interner,
    pub(super) jurisdictions: Interner,
    pub(super) scopes: Vec<ScopeDef>,
    pub(super) scope_ids: HashMap<ScopeDef, u32, foldhash::fast::RandomState>,
    pub(super) compiled: Compiled,
}

impl Shared {
    /// Compiles a catalogue version and makes it the current one.
    pub(super) fn install(&mut self, catalog: &Catalog) -> Result<(), CapacityError> {
        let doc = catalog.document();
        let mut compiled = Compiled::default();

        for c in &doc.data_categories {
            let mut chain = vec![self.categories.intern(&c.key)];
            let mut key = c.key.as_str();
            while let Some(parent) = parent_key(key) {
                chain.push(self.categories.intern(parent));
                key = parent;
            }
            let id = chain[0] as usize;
            if compiled.categories.len() <= id {
                compiled.categories.resize(id + 1, None);
            }
            compiled.categories[id] = Some(chain.into());
        }
        for ch in &doc.channels {
            let id = self.channels.intern(&ch.key) as usize;
            if compiled.channels.len() <= id {
                compiled.channels.resize(id + 1, false);
            }
            compiled.channels[id] = true;
        }
        for r in &doc.recipients {
            let id = self.recipients.intern(&r.key) as usize;
            if compiled.recipients.len() <= id {
                compiled.recipients.resize(id + 1, false);
            }
            compiled.recipients[id] = true;
        }
        for p in &doc.purposes {
            let mut chain = Vec::new();
            let mut key = Some(p.key.as_str());
            while let Some(k) = key {
                let id = purpose_symbol(self.purposes.intern(k))?;
                chain.push(id);
                key = parent_key(k);
            }
            let top = chain.len() - 1;
            let chain: Box<[(u16, u8)]> =
                chain.iter().enumerate().map(|(i, &id)| (id, (top - i) as u8)).collect();
            let sym = |i: &mut Interner, list: &[String]| -> Box<[u32]> {
                list.iter().map(|k| i.intern(k)).collect()
            };
            let info = PurposeInfo {
                basis: p.basis,
                categories: sym(&mut self.categories, &p.categories),
                channels: sym(&mut self.channels, &p.channels),
                recipients: sym(&mut self.recipients, &p.recipients),
                child_protected: p.sale_or_sharing
                    || p.kinds.iter().any(|k| matches!(k, PurposeKind::Sale | PurposeKind::Sharing)),
                chain,
            };
            let id = info.chain[0].0;
            if p.sale_or_sharing {
                compiled.sale_or_sharing.push(id);
            }
            let idx = usize::from(id);
            if compiled.purposes.len() <= idx {
                compiled.purposes.resize_with(idx + 1, || None);
            }
            compiled.purposes[idx] = Some(info);
        }
        for j in &doc.jurisdictions {
            let id = self.jurisdictions.intern(&j.key) as usize;
            let mut opt_out = vec![false; compiled.purposes.len()];
            for p in &doc.purposes {
                if j.regime_of(&p.kinds) == Regime::OptOut
                    && let Some(sym) = self.purposes.get(&p.key)
                {
                    opt_out[sym as usize] = true;
                }
            }
            if compiled.jurisdictions.len() <= id {
                compiled.jurisdictions.resize(id + 1, None);
            }
            compiled.jurisdictions[id] = Some(opt_out.into());
            if compiled.ages.len() <= id {
                compiled.ages.resize(id + 1, 0);
            }
            compiled.ages[id] = j.age_of_digital_consent.unwrap_or(0);
        }
        self.compiled = compiled;
        Ok(())
    }

    /// Whether the consent purpose `info` runs under opt-out in jurisdiction `j` (a symbol the current
    /// catalogue may no longer define: then not).
    pub(super) fn opt_out(&self, j: u32, info: &PurposeInfo) -> bool {
        let purposes = self.compiled.jurisdictions.get(j as usize).and_then(Option::as_deref);
        purposes.is_some_and(|p| p.get(usize::from(info.id())) == Some(&true))
    }

    /// The age of digital consent in jurisdiction `j` (a symbol), or the default where `j` is none, the
    /// current catalogue does not define it, or it sets no age.
    pub(super) fn age_of_consent(&self, j: Option<u32>) -> u8 {
        let age = j.and_then(|j| self.compiled.ages.get(j as usize).copied()).unwrap_or(0);
        if age == 0 { DEFAULT_AGE_OF_CONSENT } else { age }
    }

    /// The jurisdiction symbol of `key`, made when new (a subject may name one the catalogue dropped).
    pub(super) fn intern_jurisdiction(&mut self, key: &str) -> u32 {
        self.jurisdictions.intern(key)
    }

    /// What the current catalogue declares for `purpose`, if it knows it.
    pub(super) fn purpose_info(&self, purpose: &str) -> Option<&PurposeInfo> {
        let id = self.purposes.get(purpose)?;
        self.compiled.purposes.get(id as usize)?.as_ref()
    }

    /// The keys of the current catalogue's consent purposes, in symbol order.
    pub(super) fn consent_purposes(&self) -> impl Iterator<Item = &str> {
        self.compiled.purposes.iter().enumerate().filter_map(|(id, info)| {
            info.as_ref().filter(|i| i.basis == Basis::Consent).map(|_| self.purposes.name(id as u32))
        })
    }

    /// The category symbol `id` and its ancestors.
    pub(super) fn category_chain(&self, id: u32) -> Option<&[u32]> {
        self.compiled.categories.get(id as usize)?.as_deref()
    }

    /// The purposes marked as sale or sharing in the current catalogue.
    pub(super) fn sale_or_sharing_purposes(&self) -> Vec<String> {
        self.compiled.sale_or_sharing.iter().map(|&id| self.purposes.name(u32::from(id)).to_owned()).collect()
    }

    /// The purpose and scope symbols of `event`, when every name in it has one already.
    pub(super) fn lookup_event(&self, event: &Event) -> Option<(u16, u32)> {
        let purpose = purpose_symbol(self.purposes.get(&event.purpose)?).ok()?;
        let ids = |i: &Interner, list: &[String]| -> Option<Box<[u32]>> {
            let mut v = list.iter().map(|k| i.get(k)).collect::<Option<Vec<u32>>>()?;
            v.sort_unstable();
            v.dedup();
            Some(v.into())
        };
        let def = ScopeDef {
            categories: ids(&self.categories, &event.scope.categories)?,
            channels: ids(&self.channels, &event.scope.channels)?,
            recipients: ids(&self.recipients, &event.scope.recipients)?,
        };
        Some((purpose, *self.scope_ids.get(&def)?))
    }

    /// The purpose and scope symbols of `event`, made for the names that have none yet.
    pub(super) fn intern_event(&mut self, event: &Event) -> Result<(u16, u32), CapacityError> {
        let purpose = purpose_symbol(self.purposes.intern(&event.purpose))?;
        let ids = |i: &mut Interner, list: &[String]| -> Box<[u32]> {
            let mut v: Vec<u32> = list.iter().map(|k| i.intern(k)).collect();
            v.sort_unstable();
            v.dedup();
            v.into()
        };
        let def = ScopeDef {
            categories: ids(&mut self.categories, &event.scope.categories),
            channels: ids(&mut self.channels, &event.scope.channels),
            recipients: ids(&mut self.recipients, &event.scope.recipients),
        };
        let scope = match self.scope_ids.get(&def) {
            Some(&id) => id,
            None => {
                let id = u32::try_from(self.scopes.len()).map_err(|_| CapacityError)?;
                self.scopes.push(def.clone());
                self.scope_ids.insert(def, id);
                id
            }
        };
        Ok((purpose, scope))
    }
}
