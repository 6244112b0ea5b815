//! `forward`: passes requests on, unchanged, to the pipelines of the same signal that receive
//! from it — joining pipelines (e.g. per-source pipelines into one common one). No settings.

use serde::{Deserialize, Serialize};

/// `connectors.forward`: no settings.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardConfig {}
