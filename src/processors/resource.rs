//! `resource`: edits resource attributes of all three signals with the same actions as
//! `attributes` (see [`super::attributes`] for their semantics), in order, once per resource.
//! It reads nothing but resources, so a request that travels encoded stays encoded: only its
//! resources are decoded and re-encoded ([`crate::wire::edit_resources`]).

use std::sync::Arc;

use opentelemetry_proto::tonic::resource::v1::Resource;
use serde::{Deserialize, Serialize};

use super::actions::{apply, compile_all, Action, ActionConfig};
use super::{Processor, Rejections};
use crate::component::Diagnostics;
use crate::data::{RequestMeta, Telemetry};

/// `processors.resource`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResourceConfig {
    /// The edits, in order.
    pub attributes: Vec<ActionConfig>,
}

impl ResourceConfig {
    pub fn validate(&self, path: &str, diag: &mut Diagnostics) {
        if self.attributes.is_empty() {
            diag.error(
                format!("{path}.attributes"),
                "at least one action is required",
            );
        }
        compile_all(&self.attributes, &format!("{path}.attributes"), diag);
    }

    pub fn build(&self) -> ResourceProcessor {
        ResourceProcessor {
            actions: Arc::new(compile_all(
                &self.attributes,
                "",
                &mut Diagnostics::default(),
            )),
        }
    }
}

pub struct ResourceProcessor {
    actions: Arc<Vec<Action>>,
}

impl Processor for ResourceProcessor {
    fn process(&self, data: &mut Telemetry, meta: &RequestMeta, _rejected: &mut Rejections) {
        for res in data.resources_mut() {
            self.edit_resource(res, meta);
        }
    }

    fn reads(&self) -> super::Reads {
        super::Reads::Resources
    }

    fn edit_resource(&self, res: &mut Option<Resource>, meta: &RequestMeta) {
        let res = res.get_or_insert_with(Default::default);
        apply(&self.actions, &mut res.attributes, meta);
    }
}
