//! The in-process broadcast that tells open snapshot streams and the MQTT publisher which subjects
//! changed; a part of the shared state, so it uses no other part of the service layer.
//!
//! Every write path that changes a subject's statements (consent writes, the expiry job, and on PostgreSQL
//! the follower for other nodes' writes) calls [`DeviceHub::subject_changed`]; a catalogue change calls
//! [`DeviceHub::everyone`]. The broadcast carries subject ids in memory only, never to logs.

use consentry_core::SubjectId;
use tokio::sync::broadcast;

/// What changed, for devices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceChange {
    /// The subject's statements changed (or one of its devices was paired).
    Subject(SubjectId),
    /// This device was unpaired.
    Unpaired(String),
    /// The catalogue changed: every snapshot may have.
    Everyone,
    /// The server is shutting down: streams end.
    ShuttingDown,
}

/// The broadcast of [`DeviceChange`]s within this process.
#[derive(Debug)]
pub struct DeviceHub {
    tx: broadcast::Sender<DeviceChange>,
}

impl Default for DeviceHub {
    fn default() -> Self {
        Self { tx: broadcast::channel(4096).0 }
    }
}

impl DeviceHub {
    pub fn subject_changed(&self, subject: &SubjectId) {
        // No receiver (no stream open, no publisher) is fine.
        let _ = self.tx.send(DeviceChange::Subject(subject.clone()));
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
}
