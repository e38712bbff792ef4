//! `history`: an image's config history, newest first, with the size of the layer each
//! non-empty step made (Docker's `ImageHistory`).

use super::digest::Digest;
use super::index;
use super::inspect::{self, InspectError};
use super::resolve as lookup;
use super::store::{Repositories, Store};
use crate::time::Timestamp;

#[derive(Debug, Clone)]
pub struct HistoryItem {
    /// The image ID for the top step, `<missing>` for steps without an image of their own.
    pub id: String,
    pub created: Timestamp,
    pub created_by: String,
    pub comment: String,
    pub size: u64,
    pub tags: Vec<String>,
}

pub fn history(
    store: &Store,
    repos: &Repositories,
    input: &str,
) -> Result<Vec<HistoryItem>, InspectError> {
    let id: Digest = lookup::resolve(repos, input)?;
    let config = inspect::image_config(store, &id)?;
    let summary = index::summaries(repos)
        .get(&id)
        .cloned()
        .unwrap_or_default();
    let diff_ids = config
        .rootfs
        .as_ref()
        .map(|r| r.diff_ids.clone())
        .unwrap_or_default();
    let mut items = Vec::new();
    let mut layer = 0;
    for h in &config.history {
        let mut size = 0;
        if !h.empty_layer {
            if let Some(d) = diff_ids.get(layer) {
                size = match summary.layers.iter().position(|l| l == d) {
                    Some(i) => summary.layer_sizes.get(i).copied().unwrap_or(0),
                    None => store.layer(d)?.map(|l| l.size).unwrap_or(0),
                };
            }
            layer += 1;
        }
        items.push(HistoryItem {
            id: "<missing>".into(),
            created: h
                .created
                .as_deref()
                .and_then(Timestamp::parse_rfc3339)
                .unwrap_or_default(),
            created_by: h.created_by.clone(),
            comment: h.comment.clone(),
            size,
            tags: Vec::new(),
        });
    }
    items.reverse();
    if let Some(top) = items.first_mut() {
        top.id = id.to_string();
        top.tags = repos
            .tags_of(&id)
            .iter()
            .map(|t| lookup::familiar(t))
            .collect();
    }
    Ok(items)
}
