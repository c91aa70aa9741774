//! Error text for people: an error with its causes, each once; and the
//! kind of a send, receive or ack error, for counting errors by reason
//! (`send: timeout`, `receive: disconnected`, `send: broker
//! ProducerBlockedQuotaExceededError`, ...): few distinct keys, whatever
//! the message's details (ids, addresses, numbers).

/// `e: its source: ...`, each cause once (an io::Error shows its inner
/// error and then that error's source: the same text twice).
pub fn source_chain(e: &dyn std::error::Error) -> String {
    chain_from(e.to_string(), e.source())
}

/// `first`, then each cause from `cur` whose text it does not hold yet.
pub fn chain_from(mut first: String, mut cur: Option<&dyn std::error::Error>) -> String {
    while let Some(c) = cur {
        let t = c.to_string();
        if !first.contains(&t) {
            first.push_str(": ");
            first.push_str(&t);
        }
        cur = c.source();
    }
    first
}

/// The most text a kind keeps of a message it cannot name otherwise.
const KIND_TEXT_MAX: usize = 48;

/// `"{what}: {reason}"` for one error message, `what` being `send`,
/// `receive` or `ack`: `timeout`, `disconnected`, `broker NAMEError` (a
/// broker's error code, as Pulsar's `ServerError` names), or else the
/// message's start with its digits masked.
pub fn kind(what: &str, message: &str) -> String {
    format!("{what}: {}", reason(message))
}

fn reason(message: &str) -> String {
    let lower = message.to_ascii_lowercase();
    if let Some(code) = message
        .split(|c: char| !c.is_ascii_alphanumeric())
        .find(|w| w.len() > 5 && w.ends_with("Error") && w.starts_with(|c: char| c.is_ascii_uppercase()))
    {
        return format!("broker {code}");
    }
    if lower.contains("timed out") || lower.contains("timeout") {
        return "timeout".into();
    }
    const GONE: [&str; 8] = [
        "disconnect",
        "connection",
        "stream ended",
        "refused",
        "broken pipe",
        "reset by peer",
        "closed",
        "unavailable",
    ];
    if GONE.iter().any(|w| lower.contains(w)) {
        return "disconnected".into();
    }
    let masked: String = message.chars().map(|c| if c.is_ascii_digit() { '#' } else { c }).collect();
    let mut cut: String = masked.chars().take(KIND_TEXT_MAX).collect();
    if masked.chars().count() > KIND_TEXT_MAX {
        cut.push('…');
    }
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct E(&'static str, Option<Box<E>>);
    impl std::fmt::Display for E {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    impl std::error::Error for E {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|e| e as _)
        }
    }

    #[test]
    fn kinds_are_few_whatever_the_details() {
        assert_eq!(kind("send", "operation timed out after 30s"), "send: timeout");
        assert_eq!(
            kind("receive", "the consumer stream ended (connection to the broker lost)"),
            "receive: disconnected"
        );
        assert_eq!(
            kind("send", "Producer error: Server error (ProducerBlockedQuotaExceededError): quota 123 exceeded"),
            "send: broker ProducerBlockedQuotaExceededError"
        );
        assert_eq!(kind("ack", "refused by 10.0.0.7:6650"), "ack: disconnected");
        assert_eq!(kind("receive", "bad frame 17 at 0x42"), kind("receive", "bad frame 99 at 0x12"));
        let long = kind("send", &"x".repeat(200));
        assert!(long.chars().count() < 60, "{long}");
    }

    #[test]
    fn each_cause_once() {
        let e = E("transport error", Some(Box::new(E("connection refused", Some(Box::new(E("refused", None)))))));
        // "refused" is already in "connection refused": not repeated.
        assert_eq!(source_chain(&e), "transport error: connection refused");
    }
}
