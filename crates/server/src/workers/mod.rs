//! Background workers, each in its own module. Every worker stops when the shutdown token fires.

pub mod checkpoints;
pub mod device_mqtt;
pub mod dispatcher;
pub mod expiry;
pub mod follower;
pub mod retention;
