//! Per-group tallies of task reports: the whole run's (for the final
//! report) and one interval's (for its interval report); both turn into
//! proto group stats, producers first, in group order.
//!
//! Imports `task.rs` only.

use std::collections::HashMap;

use common::proto;
use common::stats::GroupPhases;

use super::task::{Role, TaskReport};

/// Stats per group, producers and consumers apart.
#[derive(Default)]
pub(super) struct GroupTally {
    pub producers: HashMap<usize, GroupPhases>,
    pub consumers: HashMap<usize, GroupPhases>,
}

impl GroupTally {
    pub fn add(&mut self, r: &TaskReport) {
        let map = if r.role == Role::Producer { &mut self.producers } else { &mut self.consumers };
        map.entry(r.group).or_default().merge(&r.stats);
    }

    /// The largest send lag of any producer group, in either phase.
    pub fn max_lag_ns(&self) -> u64 {
        self.producers.values().map(|s| s.warmup.max_lag_ns.max(s.measure.max_lag_ns)).max().unwrap_or(0)
    }

    /// Producer groups, then consumer groups, each in group order.
    pub fn into_proto(self) -> Vec<proto::GroupStats> {
        let mut groups = Vec::new();
        for (role, map) in [(proto::Role::Producer, self.producers), (proto::Role::Consumer, self.consumers)] {
            let mut sorted: Vec<_> = map.into_iter().collect();
            sorted.sort_by_key(|(g, _)| *g);
            groups.extend(sorted.into_iter().map(|(g, s)| s.to_proto(g as u32, role)));
        }
        groups
    }
}
