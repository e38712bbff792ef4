//! `system df`: disk usage of images (shared layers counted once), from the index alone.

use std::collections::HashMap;

use super::digest::Digest;
use super::index;
use super::list::{self, ListOptions, ListedImage};
use super::store::Store;
use super::users::ImageUsers;

#[derive(Debug, Clone)]
pub struct ImageUsage {
    pub image: ListedImage,
    pub shared_size: u64,
    pub containers: usize,
}

#[derive(Debug, Clone)]
pub struct DiskUsage {
    pub images: Vec<ImageUsage>,
    /// Bytes of every distinct layer in the store.
    pub layers_size: u64,
}

/// `users`: which containers use which images (`container::in_use`), to count them per image.
pub fn disk_usage(store: &Store, users: &ImageUsers) -> Result<DiskUsage, list::ListError> {
    let repos = index::load(store)?;
    let summaries = index::summaries(&repos);
    // How many images use each layer, and its size.
    let mut layer_users: HashMap<&Digest, (usize, u64)> = HashMap::new();
    for s in summaries.values() {
        for (i, d) in s.layers.iter().enumerate() {
            let size = s.layer_sizes.get(i).copied().unwrap_or(0);
            let entry = layer_users.entry(d).or_insert((0, size));
            entry.0 += 1;
        }
    }
    let layers_size = layer_users.values().map(|(_, size)| size).sum();
    let used = &users.images;
    let listed = list::list_index(
        &repos,
        &ListOptions {
            all: false,
            filters: Default::default(),
        },
    )?;
    let images = listed
        .into_iter()
        .map(|image| {
            let shared_size = image
                .summary
                .layers
                .iter()
                .filter_map(|d| layer_users.get(d))
                .filter(|(users, _)| *users > 1)
                .map(|(_, size)| size)
                .sum();
            let containers = used.get(&image.id).map(Vec::len).unwrap_or(0);
            ImageUsage {
                image,
                shared_size,
                containers,
            }
        })
        .collect();
    Ok(DiskUsage {
        images,
        layers_size,
    })
}
