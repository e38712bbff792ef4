//! The container store: one directory per container under `<root>/containers/<id>/`, found by
//! full ID, unique ID prefix or name; and the runtime directory (`/run/berth/<id>/`) holding what
//! must not survive a reboot (the monitor's attach socket).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::ContainerError;
use super::record::{ContainerRecord, State};
use crate::sys::{self, FileLock};

pub const RUNTIME_DIR: &str = "/run/berth";

pub struct ContainerStore {
    dir: PathBuf,
}

/// One container's files.
#[derive(Debug, Clone)]
pub struct ContainerDir {
    pub id: String,
    pub path: PathBuf,
}

impl ContainerDir {
    pub fn record_path(&self) -> PathBuf {
        self.path.join("container.json")
    }
    pub fn state_path(&self) -> PathBuf {
        self.path.join("state.json")
    }
    pub fn spec_path(&self) -> PathBuf {
        self.path.join("config.json")
    }
    pub fn log_path(&self) -> PathBuf {
        self.path.join("ctr.log")
    }
    pub fn rootfs(&self) -> PathBuf {
        self.path.join("merged")
    }
    pub fn runtime_dir(&self) -> PathBuf {
        Path::new(RUNTIME_DIR).join(&self.id)
    }
    pub fn attach_socket(&self) -> PathBuf {
        self.runtime_dir().join("attach.sock")
    }

    pub fn record(&self) -> Result<ContainerRecord, ContainerError> {
        read_json(&self.record_path())
    }

    pub fn write_record(&self, record: &ContainerRecord) -> Result<(), ContainerError> {
        write_json(&self.record_path(), record)
    }

    /// The recorded state; a container whose state file is missing was never started.
    pub fn state(&self) -> Result<State, ContainerError> {
        match fs::read(self.state_path()) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| ContainerError::Corrupt {
                path: self.state_path(),
                source,
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(State::default()),
            Err(source) => Err(ContainerError::Io {
                path: self.state_path(),
                source,
            }),
        }
    }

    pub fn write_state(&self, state: &State) -> Result<(), ContainerError> {
        write_json(&self.state_path(), state)
    }

    /// Serialises lifecycle operations (start, stop, rm, exec) on this container: a lock on
    /// its directory. A removed container's directory is gone: NotFound.
    pub fn lock(&self) -> Result<FileLock, ContainerError> {
        FileLock::exclusive_dir(&self.path).map_err(|source| ContainerError::Io {
            path: self.path.clone(),
            source,
        })
    }
}

impl ContainerStore {
    pub fn open(root: &Path) -> Result<ContainerStore, ContainerError> {
        let dir = root.join("containers");
        if !dir.is_dir() {
            fs::create_dir_all(&dir).map_err(|source| ContainerError::Io {
                path: dir.clone(),
                source,
            })?;
        }
        Ok(ContainerStore { dir })
    }

    /// The store-wide lock taken while names are checked and claimed.
    pub fn lock(&self) -> Result<FileLock, ContainerError> {
        let path = self.dir.join("lock");
        FileLock::exclusive(&path).map_err(|source| ContainerError::Io { path, source })
    }

    pub fn dir_of(&self, id: &str) -> ContainerDir {
        ContainerDir {
            id: id.to_string(),
            path: self.dir.join(id),
        }
    }

    /// Every container, in no particular order. Half-created directories (no record yet, left
    /// by a crash) are skipped.
    pub fn list(&self) -> Result<Vec<ContainerDir>, ContainerError> {
        let mut out = Vec::new();
        let entries = fs::read_dir(&self.dir).map_err(|source| ContainerError::Io {
            path: self.dir.clone(),
            source,
        })?;
        for entry in entries.flatten() {
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if name.len() == 64 && entry.path().join("container.json").exists() {
                out.push(self.dir_of(&name));
            }
        }
        Ok(out)
    }

    /// Finds a container by full ID, name (with or without the leading `/`), or unique ID prefix.
    pub fn find(&self, input: &str) -> Result<ContainerDir, ContainerError> {
        let not_found = || ContainerError::NotFound(input.to_string());
        if input.is_empty() {
            return Err(not_found());
        }
        let all = self.list()?;
        if let Some(dir) = all.iter().find(|d| d.id == input) {
            return Ok(dir.clone());
        }
        let name = input.trim_start_matches('/');
        for dir in &all {
            if dir.record().map(|r| r.name == name).unwrap_or(false) {
                return Ok(dir.clone());
            }
        }
        let mut prefixed = all.iter().filter(|d| d.id.starts_with(input));
        match (prefixed.next(), prefixed.next()) {
            (Some(dir), None) => Ok(dir.clone()),
            (Some(_), Some(_)) => Err(ContainerError::Ambiguous(input.to_string())),
            _ => Err(not_found()),
        }
    }

    /// The container already using `name`, if any.
    pub fn name_owner(&self, name: &str) -> Result<Option<String>, ContainerError> {
        for dir in self.list()? {
            if dir.record().map(|r| r.name == name).unwrap_or(false) {
                return Ok(Some(dir.id));
            }
        }
        Ok(None)
    }

    /// Removes a container's directory (and its runtime directory).
    pub fn remove(&self, dir: &ContainerDir) -> Result<(), ContainerError> {
        let _ = fs::remove_dir_all(dir.runtime_dir());
        // Rename first so a crash mid-delete never leaves a half container that still lists.
        let trash = self.dir.join(sys::temp_name(&dir.id));
        match fs::rename(&dir.path, &trash) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(source) => {
                return Err(ContainerError::Io {
                    path: dir.path.clone(),
                    source,
                });
            }
        }
        sys::remove_tree(&trash).map_err(|source| ContainerError::Io {
            path: trash,
            source,
        })
    }

    /// Sweeps directories abandoned by crashed removals or creations.
    pub fn sweep(&self) {
        sys::sweep_temps(&self.dir);
    }
}

fn read_json<T: for<'de> serde::Deserialize<'de>>(path: &Path) -> Result<T, ContainerError> {
    let bytes = fs::read(path).map_err(|source| ContainerError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|source| ContainerError::Corrupt {
        path: path.to_path_buf(),
        source,
    })
}

fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), ContainerError> {
    let bytes = serde_json::to_vec_pretty(value).expect("container files serialise");
    sys::replace_file(path, &bytes, 0o600).map_err(|source| ContainerError::Io {
        path: path.to_path_buf(),
        source,
    })
}
