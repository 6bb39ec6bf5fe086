//! Publishes each paired device's consent snapshot to MQTT, retained, QoS 1, at
//! `consentry/devices/{device_id}/consent`, when `mqtt_url` is configured.
//!
//! It listens to the [`DeviceHub`](crate::devices::DeviceHub): on a change of a subject it builds the
//! snapshots of that subject's devices and publishes those whose content changed since this node last
//! published them; an unpaired device's retained message is cleared (an empty retained publish). Every
//! node runs it (on PostgreSQL the follower reports other nodes' changes), so a snapshot may be published
//! more than once; a retained topic keeps only the last. At start a node publishes every device's snapshot
//! once; from then on the snapshots it published are renewed when half their lifetime has passed, so a
//! device that only listens does not hold an expired one while a node runs.
//! A publish that fails is retried on the next change or renewal round.
//!
//! Household devices are published the same way: on a change of a member (looked up through the
//! member's households) or of the household itself (a member joined or left, a device was paired).

use std::collections::HashMap;
use std::time::Duration;

use consentry_core::SubjectId;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::auth::{DeviceCaller, HouseholdDeviceCaller};
use crate::devices::{self, DeviceChange, SnapshotDevice};
use crate::sinks::MqttSink;
use crate::state::Services;

/// The topic prefix; the device id and `consent` follow.
pub const TOPIC_PREFIX: &str = "consentry/devices";
/// How often renewals are looked for.
const RENEW_ROUND: Duration = Duration::from_secs(30);
/// Devices read per page at start.
const PAGE: u32 = 500;

/// Where under [`TOPIC_PREFIX`] a device's snapshot is published: `{device_id}/consent`.
fn topic_suffix(device_id: &str) -> String {
    format!("{device_id}/consent")
}

/// Whose device it is: what a renewal builds again.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Owner {
    Subject(SubjectId),
    Household(String),
}

/// What this node last published for a device.
struct Published {
    owner: Owner,
    tag: String,
    at: Instant,
}

struct Publisher {
    state: Services,
    url: String,
    sink: Option<MqttSink>,
    published: HashMap<String, Published>,
}

impl Publisher {
    async fn sink(&mut self) -> Option<&MqttSink> {
        if self.sink.is_none() {
            let client_id = format!("consentry-devices-{}", self.state.node_id);
            match MqttSink::connect(&self.url, TOPIC_PREFIX, &client_id).await {
                Ok(sink) => self.sink = Some(sink),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot connect to the MQTT broker for device snapshots")
                }
            }
        }
        self.sink.as_ref()
    }

    /// Publishes the snapshots of `subject`'s devices, and of their households' devices, that changed (all
    /// of them with `force`).
    async fn subject(&mut self, subject: &SubjectId, force: bool) {
        match self.state.store.subject_devices(subject).await {
            Ok(devices) => {
                for device in devices {
                    self.device(SnapshotDevice::Subject(DeviceCaller::from_record(device)), force).await;
                }
            }
            Err(e) => tracing::warn!(error = %e, "reading a subject's devices for MQTT failed"),
        }
        match self.state.store.subject_households(subject).await {
            Ok(households) => {
                for household in households {
                    self.household(&household, force).await;
                }
            }
            Err(e) => tracing::warn!(error = %e, "reading a subject's households for MQTT failed"),
        }
    }

    /// Publishes the snapshots of `household`'s devices that changed (all of them with `force`).
    async fn household(&mut self, household: &str, force: bool) {
        match self.state.store.household_devices(household).await {
            Ok(devices) => {
                for device in devices {
                    let device = SnapshotDevice::Household(HouseholdDeviceCaller::from_record(device));
                    self.device(device, force).await;
                }
            }
            Err(e) => tracing::warn!(error = %e, "reading a household's devices for MQTT failed"),
        }
    }

    /// Publishes every paired device's snapshot, subjects' and households' (at start: snapshots retained
    /// before a restart are renewed from here on).
    async fn everything(&mut self) {
        let mut after: Option<String> = None;
        loop {
            let page = match self.state.store.devices_page(after.as_deref(), PAGE).await {
                Ok(page) => page,
                Err(e) => {
                    tracing::warn!(error = %e, "reading the devices for MQTT failed");
                    break;
                }
            };
            let Some(last) = page.last() else { break };
            after = Some(last.id.clone());
            for device in page {
                self.device(SnapshotDevice::Subject(DeviceCaller::from_record(device)), true).await;
            }
        }
        let mut after: Option<String> = None;
        loop {
            let page = match self.state.store.household_devices_page(after.as_deref(), PAGE).await {
                Ok(page) => page,
                Err(e) => {
                    tracing::warn!(error = %e, "reading the household devices for MQTT failed");
                    return;
                }
            };
            let Some(last) = page.last() else { return };
            after = Some(last.id.clone());
            for device in page {
                let device = SnapshotDevice::Household(HouseholdDeviceCaller::from_record(device));
                self.device(device, true).await;
            }
        }
    }

    /// Publishes `device`'s snapshot if it changed since this node last did (always with `force`).
    async fn device(&mut self, device: SnapshotDevice, force: bool) {
        let signed = match devices::any_snapshot(&self.state, &device).await {
            Ok((signed, _)) => signed,
            Err(e) => {
                tracing::warn!(error = %e, "building a device snapshot for MQTT failed");
                return;
            }
        };
        let (id, owner) = match device {
            SnapshotDevice::Subject(d) => (d.device_id, Owner::Subject(d.subject)),
            SnapshotDevice::Household(d) => (d.device_id, Owner::Household(d.household)),
        };
        let unchanged = self.published.get(&id).is_some_and(|p| p.tag == signed.tag);
        if unchanged && !force {
            return;
        }
        let Some(sink) = self.sink().await else { return };
        match sink.publish_retained(&topic_suffix(&id), signed.jws.as_bytes()).await {
            Ok(()) => {
                let published = Published { owner, tag: signed.tag, at: Instant::now() };
                self.published.insert(id, published);
            }
            Err(e) => {
                tracing::warn!(error = %e, device = %id, "publishing a device snapshot failed");
                self.published.remove(&id);
            }
        }
    }

    /// Clears an unpaired device's retained snapshot.
    async fn unpaired(&mut self, device_id: &str) {
        self.published.remove(device_id);
        let Some(sink) = self.sink().await else { return };
        if let Err(e) = sink.publish_retained(&topic_suffix(device_id), &[]).await {
            tracing::warn!(error = %e, device = %device_id, "clearing a device snapshot failed");
        }
    }

    /// Publishes again for every subject this node published for (`due_only`: those past half their life).
    async fn republish(&mut self, due_only: bool) {
        let half_life = Duration::from_secs(self.state.config.device_snapshot_max_age_secs / 2);
        let mut owners: Vec<Owner> = self
            .published
            .values()
            .filter(|p| !due_only || p.at.elapsed() >= half_life)
            .map(|p| p.owner.clone())
            .collect();
        owners.sort_unstable();
        owners.dedup();
        for owner in owners {
            match owner {
                // A subject's own devices only: their households' are owners of their own here.
                Owner::Subject(subject) => match self.state.store.subject_devices(&subject).await {
                    Ok(devices) => {
                        for device in devices {
                            let device = SnapshotDevice::Subject(DeviceCaller::from_record(device));
                            self.device(device, due_only).await;
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "reading a subject's devices for MQTT failed"),
                },
                Owner::Household(household) => self.household(&household, due_only).await,
            }
        }
    }
}

/// Runs until `shutdown` fires; returns at once when no MQTT broker is configured.
pub async fn run(state: Services, shutdown: CancellationToken) {
    let Some(url) = state.config.mqtt_url.clone() else { return };
    let mut changes = state.devices.subscribe();
    let mut publisher = Publisher { state, url, sink: None, published: HashMap::new() };
    publisher.everything().await;
    let mut renew = tokio::time::interval(RENEW_ROUND);
    renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = renew.tick() => publisher.republish(true).await,
            changed = changes.recv() => match changed {
                Ok(DeviceChange::Subject(subject)) => publisher.subject(&subject, false).await,
                Ok(DeviceChange::Household(household)) => publisher.household(&household, false).await,
                Ok(DeviceChange::Unpaired(id)) => publisher.unpaired(&id).await,
                Ok(DeviceChange::Everyone) => publisher.republish(false).await,
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "the device snapshot publisher fell behind; republishing");
                    publisher.republish(false).await;
                }
                Ok(DeviceChange::ShuttingDown) | Err(RecvError::Closed) => return,
            },
        }
    }
}
