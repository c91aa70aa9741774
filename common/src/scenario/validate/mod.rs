//! Raw scenario → validated model, one file per section of the scenario.
//! Each section reads its raw part, reports every problem to the context
//! (`cx.rs`: key, line, hint) and goes on with a stand-in value, so one
//! pass finds every problem; [`validate`] returns the model, and the
//! caller refuses it if any problem was reported.
//!
//! Sections import `cx.rs`, `values.rs`, the raw and the validated model,
//! and a section they build on (`producers` uses `rates`, `messages` and
//! `topics`' reference check; `consumers` the latter; `ceiling` uses
//! `slo`; `report` reads the validated SLOs); none imports this file.

mod broker;
mod ceiling;
mod consumers;
mod cx;
mod faults;
mod messages;
mod phases;
mod producers;
mod rates;
mod report;
mod run;
mod slo;
mod topics;
mod values;

pub use ceiling::default_ceiling;
pub(in crate::scenario) use cx::Cx;
pub(in crate::scenario) use values::kind_of;

use crate::scenario::limits::MAX_INSTANCES;
use crate::scenario::model::{ConsumerGroup, ProducerGroup, Scenario};
use crate::scenario::raw::RawScenario;

/// The scenario `raw` describes, in the order its sections build on each
/// other (topics know the broker, groups the topics, faults the
/// consumers); None when the broker kind is unknown.
pub(in crate::scenario) fn validate(raw: &RawScenario, cx: &mut Cx<'_>) -> Option<Scenario> {
    let name = name(cx, &raw.name);
    let broker = broker::validate(&raw.broker, cx);
    let kind = broker.as_ref().map(|b| b.kind);
    let topics = topics::validate(&raw.topics, kind, cx);
    let producers = producers::validate(&raw.producers, &topics, kind, cx);
    let consumers = consumers::validate(&raw.consumers, &topics, kind, cx);
    check_instances(&producers, &consumers, cx);
    consumers::check_key_shared(&consumers, &producers, cx);
    let phases = phases::validate(&raw.phases, cx);
    phases::check_pauses_end(&phases, &consumers, cx);
    let report_interval = run::report_interval(cx, raw.report_interval.as_ref());
    let placement = run::placement(cx, raw.placement.as_deref());
    let on_agent_loss = run::on_agent_loss(cx, raw.on_agent_loss.as_deref());
    let slo = slo::validate("slo", raw.slo.as_ref(), cx);
    let ceiling = ceiling::validate(raw, &slo, &producers, cx);
    let faults = faults::validate(raw.faults.as_deref().unwrap_or_default(), phases.send_end(), &consumers, cx);
    let slos: Vec<&_> = std::iter::once(&slo).chain(ceiling.as_ref().map(|c| &c.slo)).collect();
    let report = report::validate(raw.report.as_ref(), &slos, cx);
    Some(Scenario {
        name,
        description: raw.description.clone().unwrap_or_default(),
        broker: broker?,
        topics,
        producers,
        consumers,
        phases,
        report_interval,
        placement,
        slo,
        seed: raw.seed.unwrap_or(0x5eed),
        faults,
        on_agent_loss,
        ceiling,
        report,
    })
}

fn name(cx: &mut Cx<'_>, raw: &str) -> String {
    let name = raw.trim().to_string();
    if name.is_empty() {
        cx.err("name", "must not be empty");
    } else if name.len() > 128 {
        cx.err("name", "is longer than 128 characters");
    }
    name
}

/// All groups' instances together stay within [`MAX_INSTANCES`].
fn check_instances(producers: &[ProducerGroup], consumers: &[ConsumerGroup], cx: &mut Cx<'_>) {
    let instances: u64 = producers.iter().map(|p| u64::from(p.count)).sum::<u64>()
        + consumers.iter().map(|c| u64::from(c.count)).sum::<u64>();
    if instances > MAX_INSTANCES {
        cx.hint(
            "producers",
            format!("{instances} producers and consumers in all; the most this tool runs is {MAX_INSTANCES}"),
            "lower the `count`s; more instances add client overhead, not broker load",
        );
    }
}
