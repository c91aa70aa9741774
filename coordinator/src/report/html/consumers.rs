//! The page's "Who received what" section: per subscription, a table of
//! its consumers (deliveries, distinct messages, share), the spread, the
//! deliveries per partition, the switches of an exclusive or failover
//! subscription with their times, and keys on two consumers at once
//! (key_shared). May import `escape` (sibling).

use std::fmt::Write as _;

use common::report::{Report, SubscriptionReport};

use super::escape::esc;

/// The section; nothing when no subscription has per-consumer figures or
/// partitions.
pub(super) fn section(o: &mut String, r: &Report) -> std::fmt::Result {
    let shown: Vec<&SubscriptionReport> =
        r.subscriptions.iter().filter(|s| !s.by_consumer.is_empty() || !s.partition_deliveries.is_empty()).collect();
    if shown.is_empty() {
        return Ok(());
    }
    writeln!(o, "<section id=\"consumers\"><h2>Who received what</h2>")?;
    for s in shown {
        subscription(o, s)?;
    }
    writeln!(
        o,
        "<p class=\"hint\">Share = the consumer's deliveries over the subscription's. Imbalance = (max − min) / mean of the consumers' deliveries. A switch is a consumer beginning to receive (on a partition) after another; activity is known in spans of receipts with no gap over 1 s.</p></section>"
    )
}

fn subscription(o: &mut String, s: &SubscriptionReport) -> std::fmt::Result {
    let spread = s.consumer_imbalance_percent.map_or(String::new(), |p| format!(" · imbalance {p:.1} %"));
    writeln!(o, "<h3>{} / {} ({}){spread}</h3>", esc(&s.topic), esc(&s.subscription), esc(&s.sub_type))?;
    if !s.by_consumer.is_empty() {
        writeln!(
            o,
            "<div class=\"scroll\"><table><tr><th>consumer</th><th>agent</th><th class=\"n\">deliveries</th><th class=\"n\">unique</th><th class=\"n\">share</th></tr>"
        )?;
        for c in &s.by_consumer {
            writeln!(
                o,
                "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{:.1} %</td></tr>",
                esc(&c.name),
                esc(&c.agent),
                c.deliveries,
                c.unique,
                c.share_percent
            )?;
        }
        writeln!(o, "</table></div>")?;
    }
    if !s.partition_deliveries.is_empty() {
        let parts: Vec<String> = s.partition_deliveries.iter().map(|(p, n)| format!("{p}: {n}")).collect();
        writeln!(o, "<p>Deliveries per partition: {}</p>", parts.join(", "))?;
    }
    switches(o, s)?;
    if let Some(k) = &s.key_overlaps {
        let cls = if k.count > 0 { " class=\"no\"" } else { "" };
        let cut = if k.untracked_receipts > 0 { " (the check was cut short by its caps)" } else { "" };
        writeln!(o, "<p><span{cls}>{} of {} keys</span> on two consumers at once{cut}.</p>", k.count, k.keys_checked)?;
        for e in &k.sample {
            writeln!(o, "<p class=\"hint\">{}</p>", esc(e))?;
        }
    }
    Ok(())
}

fn switches(o: &mut String, s: &SubscriptionReport) -> std::fmt::Result {
    let Some(sw) = &s.switches else { return Ok(()) };
    let two = if sw.concurrent_s > 0.0 {
        format!(" <span class=\"no\">Two consumers received at once for {:.1} s.</span>", sw.concurrent_s)
    } else {
        String::new()
    };
    writeln!(o, "<p>{} switch(es) of the receiving consumer.{two}</p>", sw.count)?;
    if sw.list.is_empty() {
        return Ok(());
    }
    writeln!(
        o,
        "<div class=\"scroll\"><table><tr><th class=\"n\">at</th><th>from</th><th>to</th><th>partition</th></tr>"
    )?;
    for w in &sw.list {
        writeln!(
            o,
            "<tr><td class=\"n\">{:.2} s</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            w.at_s,
            esc(&w.from),
            esc(&w.to),
            w.partition.map_or(String::new(), |p| p.to_string())
        )?;
    }
    writeln!(o, "</table></div>")
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::report::{ConsumerShare, Switch, Switches};

    #[test]
    fn a_table_per_subscription_with_shares_partitions_and_switch_times() {
        let mut r = crate::testutil::sample_report();
        let mut o = String::new();
        section(&mut o, &r).expect("render");
        assert!(o.is_empty(), "nothing per consumer: no section");
        let s = &mut r.subscriptions[0];
        s.by_consumer = vec![ConsumerShare {
            name: "a<0>/c#0".into(),
            agent: "a<0>".into(),
            deliveries: 400,
            unique: 399,
            share_percent: 100.0,
        }];
        s.partition_deliveries = [(3, 400)].into_iter().collect();
        s.switches = Some(Switches {
            count: 1,
            list: vec![Switch { at_s: 1.5, from: "x".into(), to: "a<0>/c#0".into(), partition: None }],
            ..Switches::default()
        });
        section(&mut o, &r).expect("render");
        assert!(o.contains("<h2>Who received what</h2>"), "{o}");
        assert!(o.contains("<td>a&lt;0&gt;/c#0</td>"), "names escaped: {o}");
        assert!(o.contains("<td class=\"n\">400</td><td class=\"n\">399</td><td class=\"n\">100.0 %</td>"), "{o}");
        assert!(o.contains("Deliveries per partition: 3: 400"), "{o}");
        assert!(o.contains("<td class=\"n\">1.50 s</td><td>x</td><td>a&lt;0&gt;/c#0</td>"), "{o}");
        assert!(!o.contains("at once for"), "no concurrency: {o}");
    }
}
