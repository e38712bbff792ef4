//! Which containers `ps --filter` and `container prune --filter` keep, with Docker's filter
//! keys.

use std::collections::BTreeMap;
use std::str::FromStr;

use super::logs;
use super::record::{RecordSummary, State, Status};
use crate::time::Timestamp;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FilterError {
    /// A filter without `=`, a key berth does not know, or a value it cannot read; the text
    /// is the part Docker quotes.
    #[error("invalid filter '{0}'")]
    Invalid(String),
}

/// One `ps --filter KEY=VALUE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    Status(String),
    /// A substring of the name (a leading `/` as Docker shows names is ignored).
    Name(String),
    /// A prefix of the ID.
    Id(String),
    /// The image as the container was created from it, its ID, or a prefix of the ID's hex.
    Ancestor(String),
    /// `KEY` or `KEY=VALUE`.
    Label(String),
    /// An exit code of an exited container.
    Exited(String),
}

impl FromStr for Filter {
    type Err = FilterError;

    fn from_str(filter: &str) -> Result<Filter, FilterError> {
        let (key, value) = filter
            .split_once('=')
            .ok_or_else(|| FilterError::Invalid(filter.to_string()))?;
        let value = value.to_string();
        Ok(match key {
            "status" => Filter::Status(value),
            "name" => Filter::Name(value),
            "id" => Filter::Id(value),
            "ancestor" => Filter::Ancestor(value),
            "label" => Filter::Label(value),
            "exited" => Filter::Exited(value),
            _ => return Err(FilterError::Invalid(key.to_string())),
        })
    }
}

impl Filter {
    pub fn matches(&self, record: &RecordSummary, state: &State) -> bool {
        match self {
            Filter::Status(value) => state.status.as_str() == value,
            Filter::Name(value) => record.name.contains(value.trim_start_matches('/')),
            Filter::Id(value) => record.id.starts_with(value.as_str()),
            Filter::Ancestor(value) => {
                record.image == *value
                    || record.image_id.as_str() == value
                    || record.image_id.hex().starts_with(value.as_str())
            }
            Filter::Label(value) => has_label(&record.labels, value),
            Filter::Exited(value) => {
                state.status == Status::Exited
                    && state.exit_code.map(|c| c.to_string()).as_deref() == Some(value)
            }
        }
    }
}

/// Docker's label filter: `KEY` is present, or `KEY=VALUE` is set to exactly that.
fn has_label(labels: &BTreeMap<String, String>, filter: &str) -> bool {
    match filter.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
        None => labels.contains_key(filter),
    }
}

/// `container prune --filter`: `until=TIME` and any number of `label=…`.
#[derive(Debug, Default)]
pub struct PruneFilters {
    /// Only containers created before this (seconds since the epoch).
    until: Option<i64>,
    labels: Vec<String>,
}

impl PruneFilters {
    pub fn parse(filters: &[String]) -> Result<PruneFilters, FilterError> {
        let mut parsed = PruneFilters::default();
        for f in filters {
            match f.split_once('=') {
                Some(("until", v)) => {
                    parsed.until = Some(
                        logs::parse_time_bound(v)
                            .ok_or_else(|| FilterError::Invalid(format!("until={v}")))?,
                    )
                }
                Some(("label", v)) => parsed.labels.push(v.to_string()),
                _ => return Err(FilterError::Invalid(f.clone())),
            }
        }
        Ok(parsed)
    }

    pub fn matches(&self, record: &RecordSummary) -> bool {
        if let Some(until) = self.until {
            let created = Timestamp::parse_rfc3339(&record.created)
                .map(|t| t.secs)
                .unwrap_or(0);
            if created >= until {
                return false;
            }
        }
        self.labels.iter().all(|l| has_label(&record.labels, l))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_with_docker_errors() {
        assert_eq!(
            "status=running".parse::<Filter>(),
            Ok(Filter::Status("running".into()))
        );
        assert_eq!(
            "label=a=b".parse::<Filter>(),
            Ok(Filter::Label("a=b".into()))
        );
        assert_eq!(
            "status".parse::<Filter>(),
            Err(FilterError::Invalid("status".into()))
        );
        assert_eq!(
            "colour=red".parse::<Filter>(),
            Err(FilterError::Invalid("colour".into()))
        );
        assert_eq!(
            PruneFilters::parse(&["until=never".into()]).err(),
            Some(FilterError::Invalid("until=never".into()))
        );
        assert_eq!(
            PruneFilters::parse(&["name=x".into()]).err(),
            Some(FilterError::Invalid("name=x".into()))
        );
    }

    #[test]
    fn labels_by_key_or_pair() {
        let labels = BTreeMap::from([("a".to_string(), "1".to_string())]);
        assert!(has_label(&labels, "a"));
        assert!(has_label(&labels, "a=1"));
        assert!(!has_label(&labels, "a=2"));
        assert!(!has_label(&labels, "b"));
    }
}
