//! The image a new container runs (`run`, `create`): found in the store or pulled, as the
//! `--pull` policy says, and refused when it was built for another platform than `--platform`
//! asks for.

use std::str::FromStr;

use super::ImageError;
use super::config::ImageConfig;
use super::digest::Digest;
use super::index;
use super::manifest::Platform;
use super::pull::{self, PullEvent, PullOptions, Pulled};
use super::reference::{Reference, ReferenceError};
use super::registry::Registry;
use super::resolve::{self, LookupError};
use super::store::{Store, StoreError};
use crate::config::Config;

/// Docker's `--pull` of `run` and `create`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicy {
    /// Pull even when the image is in the store.
    Always,
    /// Pull only when the store has no such image (for the platform asked for).
    Missing,
    /// Never pull: a missing image is an error.
    Never,
}

impl FromStr for PullPolicy {
    type Err = AcquireError;

    fn from_str(s: &str) -> Result<PullPolicy, AcquireError> {
        match s {
            "always" => Ok(PullPolicy::Always),
            "missing" => Ok(PullPolicy::Missing),
            "never" => Ok(PullPolicy::Never),
            _ => Err(AcquireError::Policy(s.to_string())),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AcquireError {
    /// The words are Docker's flag error, so the CLI prints it as it is.
    #[error("invalid argument \"{0}\" for \"--pull\" flag: must be one of always, missing, never")]
    Policy(String),
    #[error(
        "image with reference {image} was found but does not match the specified platform: \
         wanted {wanted}, actual: {actual}"
    )]
    PlatformMismatch {
        image: String,
        // Boxed: two platforms would make every `Result` of this module large.
        wanted: Box<Platform>,
        actual: Box<Platform>,
    },
    /// `--pull never` and the store has no such image; the reference as Docker shows it.
    #[error("No such image: {0}")]
    NotFound(String),
    #[error(transparent)]
    Lookup(LookupError),
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Pull(#[from] ImageError),
}

/// What happens on the way, for the caller to show.
pub enum Progress<'a> {
    /// `--pull missing` found nothing in the store and is about to pull `0`.
    NotFoundLocally(&'a Reference),
    /// A step of the pull.
    Pull(PullEvent),
    /// The pull ended; the platform check comes after it.
    Pulled {
        reference: &'a Reference,
        pulled: &'a Pulled,
    },
}

/// The ID of the image `image` (what the user typed) for a new container.
pub fn acquire(
    images: &Store,
    config: &Config,
    image: &str,
    policy: PullPolicy,
    platform: Option<&Platform>,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Digest, AcquireError> {
    if policy != PullPolicy::Always {
        let repos = index::load(images)?;
        match resolve::resolve(&repos, image) {
            Ok(id) => match check_platform(images, &id, image, platform) {
                Ok(()) => return Ok(id),
                // Docker's rule: a local image built for another platform than `--platform`
                // asks for counts as missing, and pulling must bring the right one; a name
                // that cannot be pulled (an ID) keeps the refusal.
                Err(refused @ AcquireError::PlatformMismatch { .. })
                    if policy == PullPolicy::Never || Reference::parse(image).is_err() =>
                {
                    return Err(refused);
                }
                Err(AcquireError::PlatformMismatch { .. }) => {}
                Err(e) => return Err(e),
            },
            Err(LookupError::NotFound(_)) => {}
            Err(e) => return Err(AcquireError::Lookup(e)),
        }
    }
    let reference = Reference::parse(image)?;
    if policy == PullPolicy::Never {
        return Err(AcquireError::NotFound(reference.familiar()));
    }
    if policy == PullPolicy::Missing {
        progress(Progress::NotFoundLocally(&reference));
    }
    let registry = Registry::new(&reference.domain, config);
    let pulled = pull::pull(
        images,
        &registry,
        &reference,
        &PullOptions {
            platform: platform.cloned(),
        },
        &|e| progress(Progress::Pull(e)),
    )?;
    progress(Progress::Pulled {
        reference: &reference,
        pulled: &pulled,
    });
    // A single-platform manifest is pulled whatever it was built for.
    check_platform(images, &pulled.id, image, platform)?;
    Ok(pulled.id)
}

/// Refuses image `id` when `wanted` is given and the image was built for another platform.
fn check_platform(
    images: &Store,
    id: &Digest,
    image: &str,
    wanted: Option<&Platform>,
) -> Result<(), AcquireError> {
    let Some(wanted) = wanted else {
        return Ok(());
    };
    let actual = ImageConfig::load(images, id)?.platform();
    if wanted.accepts(&actual) {
        return Ok(());
    }
    Err(AcquireError::PlatformMismatch {
        image: image.to_string(),
        wanted: Box::new(wanted.clone()),
        actual: Box::new(actual),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_parse_as_docker_spells_them() {
        assert_eq!(
            "always".parse::<PullPolicy>().ok(),
            Some(PullPolicy::Always)
        );
        assert_eq!(
            "missing".parse::<PullPolicy>().ok(),
            Some(PullPolicy::Missing)
        );
        assert_eq!("never".parse::<PullPolicy>().ok(), Some(PullPolicy::Never));
        assert_eq!(
            "sometimes"
                .parse::<PullPolicy>()
                .err()
                .map(|e| e.to_string()),
            Some(
                "invalid argument \"sometimes\" for \"--pull\" flag: must be one of always, \
                 missing, never"
                    .to_string()
            )
        );
    }
}
