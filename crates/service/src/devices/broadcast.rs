//! The in-process broadcast that tells open snapshot streams and the MQTT publisher which subjects
//! changed; a part of the shared state, so it uses no other part of the service layer.
//!
//! Every write path that changes a subject's statements (consent writes, the expiry job, and on PostgreSQL
//! the follower for other nodes' writes) calls [`DeviceHub::subject_changed`]; a catalogue change calls
//! [`DeviceHub::everyone`]; a change of a household's members calls [`DeviceHub::household_changed`]. The
//! broadcast carries subject ids in memory only, never to logs.
//!
//! The hub also counts each device's open snapshot streams ([`DeviceHub::open_stream`]), so that one
//! device token cannot hold an unbounded number of them; the count is this node's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use consentry_core::SubjectId;
use tokio::sync::broadcast;

/// What changed, for devices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceChange {
    /// The subject's statements changed (or one of its devices was paired).
    Subject(SubjectId),
    /// This device was unpaired.
    Unpaired(String),
    /// This household's members changed (or one of its devices was paired).
    Household(String),
    /// The catalogue changed: every snapshot may have.
    Everyone,
    /// The server is shutting down: streams end.
    ShuttingDown,
}

/// The broadcast of [`DeviceChange`]s within this process.
#[derive(Debug)]
pub struct DeviceHub {
    tx: broadcast::Sender<DeviceChange>,
    /// Open snapshot streams per device id; a device without one has no entry.
    streams: Arc<Mutex<HashMap<String, usize>>>,
}

impl Default for DeviceHub {
    fn default() -> Self {
        Self { tx: broadcast::channel(4096).0, streams: Arc::default() }
    }
}

/// One open snapshot stream of a device, counted until it is dropped.
#[derive(Debug)]
pub struct StreamSlot {
    streams: Arc<Mutex<HashMap<String, usize>>>,
    device_id: String,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut streams = self.streams.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(open) = streams.get_mut(&self.device_id) {
            *open = open.saturating_sub(1);
            if *open == 0 {
                streams.remove(&self.device_id);
            }
        }
    }
}

impl DeviceHub {
    pub fn subject_changed(&self, subject: &SubjectId) {
        // No receiver (no stream open, no publisher) is fine.
        let _ = self.tx.send(DeviceChange::Subject(subject.clone()));
    }

    pub fn household_changed(&self, household: &str) {
        let _ = self.tx.send(DeviceChange::Household(household.to_owned()));
    }

    pub fn unpaired(&self, device_id: &str) {
        let _ = self.tx.send(DeviceChange::Unpaired(device_id.to_owned()));
    }

    pub fn everyone(&self) {
        let _ = self.tx.send(DeviceChange::Everyone);
    }

    pub fn shutting_down(&self) {
        let _ = self.tx.send(DeviceChange::ShuttingDown);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<DeviceChange> {
        self.tx.subscribe()
    }

    /// A slot for one more open stream of `device_id`, unless it already holds `max`.
    pub fn open_stream(&self, device_id: &str, max: usize) -> Option<StreamSlot> {
        let mut streams = self.streams.lock().unwrap_or_else(PoisonError::into_inner);
        let open = streams.entry(device_id.to_owned()).or_insert(0);
        if *open >= max {
            return None;
        }
        *open += 1;
        Some(StreamSlot { streams: Arc::clone(&self.streams), device_id: device_id.to_owned() })
    }

    /// How many streams `device_id` holds open on this node.
    pub fn open_streams(&self, device_id: &str) -> usize {
        let streams = self.streams.lock().unwrap_or_else(PoisonError::into_inner);
        streams.get(device_id).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_holds_at_most_max_streams_and_a_closed_one_frees_its_slot() {
        let hub = DeviceHub::default();
        let mut slots: Vec<_> = (0..3).filter_map(|_| hub.open_stream("d1", 3)).collect();
        assert_eq!(slots.len(), 3);
        assert!(hub.open_stream("d1", 3).is_none(), "a fourth is refused");
        let other = hub.open_stream("d2", 3);
        assert!(other.is_some(), "another device has its own count");
        drop(slots.pop());
        assert_eq!(hub.open_streams("d1"), 2);
        assert!(hub.open_stream("d1", 3).is_some(), "a closed stream frees its slot");
        drop(other);
        assert_eq!(hub.open_streams("d2"), 0);
        assert!(!hub.streams.lock().expect("lock").contains_key("d2"), "no entry is left behind");
    }
}
