//! The scenario, in the order it is read: the file as written (`raw`,
//! which also generates the JSON Schema), `--set` overrides on its YAML
//! tree (`overrides`), reading and parsing (`load`), the checks by section
//! (`validate/`) into the model (`model`). Every bad input becomes a
//! [`ScenarioError`] naming the file, line and key, with a hint; never a
//! panic. `locate` finds the line of a key; `names` holds each broker's
//! topic-name rules; `broker_token` reads the broker token; `limits` the
//! bounds.
//!
//! Everything other crates use is re-exported here (`common::scenario::X`).

mod broker_token;
mod error;
mod limits;
mod load;
pub mod locate;
mod model;
mod names;
pub mod overrides;
pub mod raw;
mod validate;

pub use broker_token::BrokerTokenError;
pub use error::{Issue, ScenarioError};
pub use limits::{MAX_FILE_BYTES, MAX_INSTANCES, MAX_MESSAGE_BYTES, MAX_RATE_PER_PRODUCER};
pub use load::{load_file, load_str};
pub use model::*;
pub use names::{danube_topic_name, danube_topic_ok, pulsar_topic_name, pulsar_topic_ok, TopicNameError};
pub use overrides::{Override, OverrideError};
pub use validate::default_ceiling;

#[cfg(test)]
mod tests;
