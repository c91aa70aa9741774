//! Topic names as each broker spells them: the checks validation applies
//! and the full names the drivers (and the coordinator's Pulsar admin
//! calls) use. Imports nothing.

/// Why a topic name is not one the broker takes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicNameError {
    #[error("use a short name (`orders`) or `/namespace/topic`")]
    DanubeShape,
    #[error("character `{0}` is not allowed (letters, digits, `_` and `-` only)")]
    DanubeCharacter(char),
    #[error("a full name is domain://tenant/namespace/topic")]
    PulsarFullShape,
    #[error("unknown domain `{0}`; use persistent or non-persistent")]
    PulsarDomain(String),
    #[error("use a short name or tenant/namespace/topic")]
    PulsarShape,
    #[error("character `{0}` is not allowed")]
    PulsarCharacter(char),
    #[error("empty path segment")]
    EmptySegment,
}

/// Danube's full topic name: `/namespace/topic`; a short name lives in
/// `default` (`orders` -> `/default/orders`).
pub fn danube_topic_name(name: &str) -> String {
    if name.starts_with('/') {
        name.to_string()
    } else {
        format!("/default/{name}")
    }
}

/// Danube topic names, as its broker checks them: `/namespace/topic` (or a
/// short `topic`), each part ASCII letters, digits, `_` and `-`.
pub fn danube_topic_ok(name: &str) -> Result<(), TopicNameError> {
    let full = danube_topic_name(name);
    let parts: Vec<&str> = full.split('/').collect();
    if parts.len() != 3 {
        return Err(TopicNameError::DanubeShape);
    }
    for part in &parts[1..] {
        if part.is_empty() {
            return Err(TopicNameError::EmptySegment);
        }
        if let Some(c) = part.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-')) {
            return Err(TopicNameError::DanubeCharacter(c));
        }
    }
    Ok(())
}

/// Pulsar topic names: a short local name, `tenant/namespace/name`, or the
/// full `persistent://tenant/namespace/name` (or non-persistent://).
pub fn pulsar_topic_ok(name: &str) -> Result<(), TopicNameError> {
    let rest = match name.split_once("://") {
        Some(("persistent" | "non-persistent", r)) => {
            if r.split('/').count() != 3 {
                return Err(TopicNameError::PulsarFullShape);
            }
            r
        }
        Some((d, _)) => return Err(TopicNameError::PulsarDomain(d.to_string())),
        None => {
            let parts = name.split('/').count();
            if parts != 1 && parts != 3 {
                return Err(TopicNameError::PulsarShape);
            }
            name
        }
    };
    for part in rest.split('/') {
        if part.is_empty() {
            return Err(TopicNameError::EmptySegment);
        }
        if let Some(c) = part.chars().find(|c| !(c.is_ascii_alphanumeric() || "-_=:.%".contains(*c))) {
            return Err(TopicNameError::PulsarCharacter(c));
        }
    }
    Ok(())
}

/// The canonical form other clients use for the same Pulsar topic: short
/// names live in public/default (some brokers do not normalise them themselves).
pub fn pulsar_topic_name(name: &str) -> String {
    if name.contains("://") {
        name.to_string()
    } else if name.split('/').count() == 3 {
        format!("persistent://{name}")
    } else {
        format!("persistent://public/default/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pulsar_full_names() {
        assert_eq!(pulsar_topic_name("t"), "persistent://public/default/t");
        assert_eq!(pulsar_topic_name("a/b/t"), "persistent://a/b/t");
        assert_eq!(pulsar_topic_name("non-persistent://a/b/t"), "non-persistent://a/b/t");
    }
}
