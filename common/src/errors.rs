//! Error text for people: an error with its causes, each once.

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
    fn each_cause_once() {
        let e = E("transport error", Some(Box::new(E("connection refused", Some(Box::new(E("refused", None)))))));
        // "refused" is already in "connection refused": not repeated.
        assert_eq!(source_chain(&e), "transport error: connection refused");
    }
}
