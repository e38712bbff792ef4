//! `-c/--change` for `commit` and `import`: the Dockerfile instructions Docker accepts there
//! (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, USER, VOLUME, WORKDIR), applied to the
//! `config` object of an image configuration.

use serde_json::{Map, Value, json};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChangeError {
    #[error("{0} is not a valid change command")]
    Unknown(String),
    #[error("{0} requires at least one argument")]
    MissingArgument(String),
    #[error("{0} names can not be blank")]
    Blank(String),
    #[error("Syntax error - can't find = in {0:?}. Must be of the form: name=value")]
    NoEquals(String),
}

/// Applies every change to `config` (the image config's `config` object).
pub fn apply(config: &mut Map<String, Value>, changes: &[String]) -> Result<(), ChangeError> {
    for change in changes {
        apply_one(config, change)?;
    }
    Ok(())
}

fn apply_one(config: &mut Map<String, Value>, change: &str) -> Result<(), ChangeError> {
    let change = change.trim();
    let (instruction, rest) = match change.split_once(|c: char| c.is_whitespace()) {
        Some((i, r)) => (i, r.trim()),
        None => (change, ""),
    };
    let upper = instruction.to_ascii_uppercase();
    let need = |rest: &str| {
        if rest.is_empty() {
            Err(ChangeError::MissingArgument(upper.clone()))
        } else {
            Ok(())
        }
    };
    match upper.as_str() {
        "CMD" => {
            need(rest)?;
            config.insert("Cmd".into(), json!(command_form(rest)));
        }
        "ENTRYPOINT" => {
            need(rest)?;
            config.insert("Entrypoint".into(), json!(command_form(rest)));
        }
        "ENV" => {
            need(rest)?;
            let pairs = key_values(rest, "ENV")?;
            let env = config
                .entry("Env")
                .or_insert_with(|| json!([]))
                .as_array_mut();
            let Some(env) = env else {
                return Ok(());
            };
            for (k, v) in pairs {
                let prefix = format!("{k}=");
                let entry = format!("{k}={v}");
                if let Some(slot) = env
                    .iter_mut()
                    .find(|e| e.as_str().is_some_and(|s| s.starts_with(&prefix)))
                {
                    *slot = json!(entry);
                } else {
                    env.push(json!(entry));
                }
            }
        }
        "LABEL" => {
            need(rest)?;
            let pairs = key_values(rest, "LABEL")?;
            let labels = config.entry("Labels").or_insert_with(|| json!({}));
            if labels.is_null() {
                *labels = json!({});
            }
            if let Some(labels) = labels.as_object_mut() {
                for (k, v) in pairs {
                    labels.insert(k, json!(v));
                }
            }
        }
        "EXPOSE" => {
            need(rest)?;
            let ports = config.entry("ExposedPorts").or_insert_with(|| json!({}));
            if ports.is_null() {
                *ports = json!({});
            }
            if let Some(ports) = ports.as_object_mut() {
                for port in rest.split_whitespace() {
                    let port = if port.contains('/') {
                        port.to_string()
                    } else {
                        format!("{port}/tcp")
                    };
                    ports.insert(port, json!({}));
                }
            }
        }
        "VOLUME" => {
            need(rest)?;
            let list = if rest.starts_with('[') {
                serde_json::from_str::<Vec<String>>(rest)
                    .unwrap_or_else(|_| rest.split_whitespace().map(str::to_string).collect())
            } else {
                rest.split_whitespace().map(str::to_string).collect()
            };
            let volumes = config.entry("Volumes").or_insert_with(|| json!({}));
            if volumes.is_null() {
                *volumes = json!({});
            }
            if let Some(volumes) = volumes.as_object_mut() {
                for v in list {
                    volumes.insert(v, json!({}));
                }
            }
        }
        "USER" => {
            need(rest)?;
            config.insert("User".into(), json!(rest));
        }
        "WORKDIR" => {
            need(rest)?;
            config.insert("WorkingDir".into(), json!(rest));
        }
        "ONBUILD" => {
            need(rest)?;
            let list = config.entry("OnBuild").or_insert_with(|| json!([]));
            if list.is_null() {
                *list = json!([]);
            }
            if let Some(list) = list.as_array_mut() {
                list.push(json!(rest));
            }
        }
        _ => return Err(ChangeError::Unknown(upper)),
    }
    Ok(())
}

/// JSON (exec) form, or shell form wrapped in `/bin/sh -c`.
fn command_form(rest: &str) -> Vec<String> {
    if rest.starts_with('[')
        && let Ok(list) = serde_json::from_str::<Vec<String>>(rest)
    {
        return list;
    }
    vec!["/bin/sh".into(), "-c".into(), rest.into()]
}

/// `k=v k2="v 2"` or the legacy `k v w` (one pair, value is the rest).
fn key_values(rest: &str, what: &str) -> Result<Vec<(String, String)>, ChangeError> {
    let words = split_words(rest);
    if !words.first().is_some_and(|w| w.contains('=')) {
        let (k, v) = rest
            .split_once(char::is_whitespace)
            .ok_or_else(|| ChangeError::NoEquals(rest.to_string()))?;
        return Ok(vec![(k.to_string(), v.trim().to_string())]);
    }
    let mut out = Vec::new();
    for word in words {
        let (k, v) = word
            .split_once('=')
            .ok_or_else(|| ChangeError::NoEquals(word.clone()))?;
        if k.is_empty() {
            return Err(ChangeError::Blank(what.to_string()));
        }
        out.push((k.to_string(), v.to_string()));
    }
    Ok(out)
}

/// Splits on whitespace, honouring double and single quotes and backslash escapes.
fn split_words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            (None, '"' | '\'') => {
                quote = Some(c);
                any = true;
            }
            (Some(q), c) if c == q => quote = None,
            (_, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
                any = true;
            }
            (_, c) => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applies_docker_changes() {
        let mut c = Map::new();
        apply(
            &mut c,
            &[
                "CMD [\"nginx\",\"-g\",\"daemon off;\"]".into(),
                "ENTRYPOINT /bin/app run".into(),
                "ENV A=1 B=\"two words\"".into(),
                "ENV C 3 4".into(),
                "EXPOSE 80 53/udp".into(),
                "LABEL x=y".into(),
                "USER nobody".into(),
                "WORKDIR /srv".into(),
                "VOLUME /data".into(),
            ],
        )
        .unwrap();
        assert_eq!(c["Cmd"], json!(["nginx", "-g", "daemon off;"]));
        assert_eq!(c["Entrypoint"], json!(["/bin/sh", "-c", "/bin/app run"]));
        assert_eq!(c["Env"], json!(["A=1", "B=two words", "C=3 4"]));
        assert_eq!(c["ExposedPorts"], json!({"80/tcp": {}, "53/udp": {}}));
        assert_eq!(c["Labels"], json!({"x": "y"}));
        assert_eq!(c["User"], json!("nobody"));
        assert_eq!(c["WorkingDir"], json!("/srv"));
        assert_eq!(c["Volumes"], json!({"/data": {}}));
        assert_eq!(
            apply(&mut c, &["FROM x".into()]),
            Err(ChangeError::Unknown("FROM".into()))
        );
    }
}
