//! Topic names as each broker spells them: the checks validation applies
//! and the full names the drivers (and the coordinator's Pulsar admin
//! calls) use. Imports nothing.

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
pub fn danube_topic_ok(name: &str) -> Result<(), String> {
    let full = danube_topic_name(name);
    let parts: Vec<&str> = full.split('/').collect();
    if parts.len() != 3 {
        return Err("use a short name (`orders`) or `/namespace/topic`".into());
    }
    for part in &parts[1..] {
        if part.is_empty() {
            return Err("empty path segment".into());
        }
        if let Some(c) = part.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-')) {
            return Err(format!("character `{c}` is not allowed (letters, digits, `_` and `-` only)"));
        }
    }
    Ok(())
}

/// Pulsar topic names: a short local name, `tenant/namespace/name`, or the
/// full `persistent://tenant/namespace/name` (or non-persistent://).
pub fn pulsar_topic_ok(name: &str) -> Result<(), String> {
    let rest = match name.split_once("://") {
        Some(("persistent" | "non-persistent", r)) => {
            if r.split('/').count() != 3 {
                return Err("a full name is domain://tenant/namespace/topic".into());
            }
            r
        }
        Some((d, _)) => return Err(format!("unknown domain `{d}`; use persistent or non-persistent")),
        None => {
            let parts = name.split('/').count();
            if parts != 1 && parts != 3 {
                return Err("use a short name or tenant/namespace/topic".into());
            }
            name
        }
    };
    for part in rest.split('/') {
        if part.is_empty() {
            return Err("empty path segment".into());
        }
        if let Some(c) = part.chars().find(|c| !(c.is_ascii_alphanumeric() || "-_=:.%".contains(*c))) {
            return Err(format!("character `{c}` is not allowed"));
        }
    }
    Ok(())
}
