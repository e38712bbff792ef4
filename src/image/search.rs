//! `search`: Docker Hub's search API for docker.io (`BERTH_HUB_SEARCH_URL` overrides the
//! endpoint, for tests and mirrors); for any other registry, its `/v2/_catalog` filtered by the
//! term.

use serde::Deserialize;

use super::reference::DOCKER_HUB;
use super::registry::{MAX_DOCUMENT_BYTES, Registry, RegistryError, upload};
use crate::config::Config;

pub const HUB_SEARCH_URL: &str = "https://index.docker.io/v1/search";
pub const HUB_SEARCH_ENV: &str = "BERTH_HUB_SEARCH_URL";

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("malformed search results from {url}: {message}")]
    Malformed { url: String, message: String },
    #[error("Invalid filter '{0}'")]
    BadFilter(String),
    #[error("Limit {0} is outside the range of [1, 100]")]
    BadLimit(usize),
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct SearchResult {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub star_count: u64,
    #[serde(default)]
    pub is_official: bool,
    #[serde(default)]
    pub is_automated: bool,
}

#[derive(Debug, Default, Clone)]
pub struct Filters {
    pub stars: Option<u64>,
    pub is_official: Option<bool>,
    pub is_automated: Option<bool>,
}

impl Filters {
    pub fn parse(specs: &[String]) -> Result<Filters, SearchError> {
        let mut f = Filters::default();
        for spec in specs {
            let bad = || SearchError::BadFilter(spec.clone());
            let (key, value) = spec.split_once('=').ok_or_else(bad)?;
            match key {
                "stars" => f.stars = Some(value.parse().map_err(|_| bad())?),
                "is-official" => f.is_official = Some(value.parse().map_err(|_| bad())?),
                "is-automated" => f.is_automated = Some(value.parse().map_err(|_| bad())?),
                _ => return Err(SearchError::BadFilter(key.to_string())),
            }
        }
        Ok(f)
    }

    fn keeps(&self, r: &SearchResult) -> bool {
        self.stars.is_none_or(|s| r.star_count >= s)
            && self.is_official.is_none_or(|o| r.is_official == o)
            && self.is_automated.is_none_or(|a| r.is_automated == a)
    }
}

/// `term` may name a registry (`127.0.0.1:5000/deb`); otherwise Docker Hub is searched.
pub fn search(
    config: &Config,
    term: &str,
    limit: usize,
    filters: &Filters,
) -> Result<Vec<SearchResult>, SearchError> {
    if !(1..=100).contains(&limit) {
        return Err(SearchError::BadLimit(limit));
    }
    let (domain, query) = split_term(term);
    let mut results = if domain == DOCKER_HUB {
        hub(query, limit)?
    } else {
        catalog(config, &domain, query)?
    };
    results.retain(|r| filters.keeps(r));
    results.truncate(limit);
    Ok(results)
}

/// `host:5000/deb` → (`host:5000`, `deb`); a first component is a registry under the same rule
/// as references.
fn split_term(term: &str) -> (String, &str) {
    if let Some((first, rest)) = term.split_once('/')
        && (first.contains('.') || first.contains(':') || first == "localhost")
    {
        let domain = if first == "index.docker.io" || first == "registry-1.docker.io" {
            DOCKER_HUB.to_string()
        } else {
            first.to_string()
        };
        return (domain, rest);
    }
    (DOCKER_HUB.to_string(), term)
}

fn hub(query: &str, limit: usize) -> Result<Vec<SearchResult>, SearchError> {
    let base = std::env::var(HUB_SEARCH_ENV).unwrap_or_else(|_| HUB_SEARCH_URL.to_string());
    let mut url = url::Url::parse(&base).map_err(|e| SearchError::Malformed {
        url: base.clone(),
        message: e.to_string(),
    })?;
    url.query_pairs_mut()
        .append_pair("q", query)
        .append_pair("n", &limit.to_string());
    let url = url.to_string();
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(upload::http_get(&url)?, MAX_DOCUMENT_BYTES),
        &mut bytes,
    )
    .map_err(|e| SearchError::Malformed {
        url: url.clone(),
        message: e.to_string(),
    })?;
    #[derive(Deserialize)]
    struct Page {
        #[serde(default)]
        results: Vec<SearchResult>,
    }
    let page: Page = serde_json::from_slice(&bytes).map_err(|e| SearchError::Malformed {
        url,
        message: e.to_string(),
    })?;
    Ok(page.results)
}

fn catalog(config: &Config, domain: &str, query: &str) -> Result<Vec<SearchResult>, SearchError> {
    let registry = Registry::new(domain, config);
    let bytes = registry
        .get("/v2/_catalog?n=1000", "registry:catalog:*", &[])?
        .read_limited("catalog", MAX_DOCUMENT_BYTES)?;
    #[derive(Deserialize)]
    struct Catalog {
        #[serde(default)]
        repositories: Vec<String>,
    }
    let catalog: Catalog = serde_json::from_slice(&bytes).map_err(|e| SearchError::Malformed {
        url: format!("{}/v2/_catalog", registry.base()),
        message: e.to_string(),
    })?;
    Ok(catalog
        .repositories
        .into_iter()
        .filter(|name| name.contains(query))
        .map(|name| SearchResult {
            name: format!("{domain}/{name}"),
            description: String::new(),
            star_count: 0,
            is_official: false,
            is_automated: false,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_terms() {
        assert_eq!(split_term("nginx"), (DOCKER_HUB.to_string(), "nginx"));
        assert_eq!(
            split_term("127.0.0.1:5000/deb"),
            ("127.0.0.1:5000".to_string(), "deb")
        );
        assert_eq!(split_term("user/app"), (DOCKER_HUB.to_string(), "user/app"));
    }
}
