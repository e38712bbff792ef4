//! The container store: one directory per container under `<root>/containers/<id>/`, found by
//! full ID, unique ID prefix or name (through the name index `<root>/container-names/`); and
//! the runtime directory (`/run/berth/<id>/`) holding what
//! must not survive a reboot (the monitor's attach socket).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::ContainerError;
use super::record::{ContainerRecord, RecordSummary, State};
use crate::sys::{self, FileLock};

pub const RUNTIME_DIR: &str = "/run/berth";

/// Makes the runtime directory private to root, as the store root is (CVE-2021-41091): what
/// lies below it (containers' attach sockets and /etc files, network state) is no other
/// user's business. Tightens one an older berth made 0755.
pub fn private_runtime_dir() -> io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let root = Path::new(RUNTIME_DIR);
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(root)?;
    if fs::metadata(root)?.permissions().mode() & 0o077 != 0 {
        fs::set_permissions(root, fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// The OCI runtime's state records of berth's containers: each in the container's runtime
/// directory (`/run/berth/<id>/state.json`, beside its attach socket), which berth makes
/// before the start and removes after the exit, so a record costs one file and not a
/// directory of its own (/run is a disk file system on some hosts).
pub fn oci_runtime() -> crate::runtime::Runtime {
    crate::runtime::Runtime::new(RUNTIME_DIR)
}

/// Removes the runtime's record of a stopped container and its cgroup (killing anything
/// left in it); without a record, the cgroup `spec` names. Idempotent.
pub fn release_runtime(
    id: &str,
    spec: &oci_spec::runtime::Spec,
) -> Result<(), crate::runtime::RuntimeError> {
    match oci_runtime().load(id) {
        Ok(c) => c.delete(true),
        Err(_) => match spec
            .linux()
            .as_ref()
            .and_then(|l| l.cgroups_path().as_ref())
        {
            Some(path) => crate::runtime::remove_cgroup(path),
            None => Ok(()),
        },
    }
}

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
    /// The json-file log being written, named as Docker names it; rotated files add `.1`,
    /// `.2`, … (`log_file.rs`).
    pub fn log_path(&self) -> PathBuf {
        self.path.join(format!("{}-json.log", self.id))
    }
    /// The log's name in stores from before the Docker names: the monitor renames it at
    /// the container's next output.
    pub fn legacy_log_path(&self) -> PathBuf {
        self.path.join("ctr.log")
    }
    /// The log to read: the legacy one while it has not been renamed.
    pub fn readable_log_path(&self) -> PathBuf {
        let path = self.log_path();
        if !path.exists() && self.legacy_log_path().exists() {
            return self.legacy_log_path();
        }
        path
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

    /// Serialises lifecycle operations (start, stop, rm, rename, exec) on this container: a
    /// lock on its directory. A removed container's directory is gone: NotFound.
    pub fn lock(&self) -> Result<FileLock, ContainerError> {
        FileLock::exclusive_dir(&self.path).map_err(|source| self.lock_error(source))
    }

    /// [`ContainerDir::lock`] if nobody holds it (this process included): `None` otherwise.
    pub fn try_lock(&self) -> Result<Option<FileLock>, ContainerError> {
        FileLock::try_exclusive_dir(&self.path).map_err(|source| self.lock_error(source))
    }

    fn lock_error(&self, source: io::Error) -> ContainerError {
        if source.kind() == io::ErrorKind::NotFound {
            ContainerError::NotFound(self.id.clone())
        } else {
            ContainerError::Io {
                path: self.path.clone(),
                source,
            }
        }
    }

    /// Where the monitor leaves the exit of a run it could not write into `state.json` (a
    /// full or read-only store): the runtime directory, on another file system (/run), so
    /// that the exit is not lost while the store has no room. Read back only for a
    /// recorded-running container whose init is gone.
    fn pending_exit_path(&self) -> PathBuf {
        self.runtime_dir().join("exit.json")
    }

    /// Keeps `exited` (the final state of a run) where the store's space is not needed.
    pub fn write_pending_exit(&self, exited: &State) -> io::Result<()> {
        fs::create_dir_all(self.runtime_dir())?;
        let bytes = serde_json::to_vec(exited).expect("container files serialise");
        sys::replace_file(&self.pending_exit_path(), &bytes, 0o600)
    }

    /// The exit the monitor left aside for the run `recorded` describes (same init, same
    /// start time), if any.
    pub fn pending_exit(&self, recorded: &State) -> Option<State> {
        let bytes = fs::read(self.pending_exit_path()).ok()?;
        let exited: State = serde_json::from_slice(&bytes).ok()?;
        (recorded.status.is_running()
            && exited.pid == recorded.pid
            && exited.pid_start == recorded.pid_start
            && !exited.status.is_running())
        .then_some(exited)
    }

    /// Moves an exit left aside into `state.json`, now that it may fit; the caller holds the
    /// container's lock. Ok(false) when there was nothing to move.
    pub fn record_pending_exit(&self) -> Result<bool, ContainerError> {
        // Nearly always none: one stat, not a read of the state to compare it with.
        if !self.pending_exit_path().exists() {
            return Ok(false);
        }
        let recorded = self.state()?;
        let Some(exited) = self.pending_exit(&recorded) else {
            return Ok(false);
        };
        self.write_state(&exited)?;
        self.forget_pending_exit();
        Ok(true)
    }

    /// Drops the exit left aside (recorded now, or its container removed or restarted), and
    /// the runtime directory it kept, unless a run uses that again.
    pub fn forget_pending_exit(&self) {
        if fs::remove_file(self.pending_exit_path()).is_ok() {
            let _ = fs::remove_dir(self.runtime_dir());
        }
    }
}

impl ContainerStore {
    pub fn open(root: &Path) -> Result<ContainerStore, ContainerError> {
        let dir = root.join("containers");
        if !dir.is_dir() {
            crate::image::store::check_root(root)?;
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
        Ok(self
            .ids()?
            .into_iter()
            .map(|id| self.dir_of(&id))
            .filter(|dir| dir.record_path().exists())
            .collect())
    }

    /// The names in the store's directory that are container IDs, without looking into
    /// the directories (one of them may still lack its record, left by a crash).
    pub fn ids(&self) -> Result<Vec<String>, ContainerError> {
        let entries = fs::read_dir(&self.dir).map_err(|source| ContainerError::Io {
            path: self.dir.clone(),
            source,
        })?;
        Ok(entries
            .flatten()
            .filter_map(|entry| entry.file_name().into_string().ok())
            .filter(|name| name.len() == 64 && !name.starts_with('.'))
            .collect())
    }

    /// A reader of many containers' records and states, through one descriptor of the
    /// store's directory (see [`StoreReader`]).
    pub fn reader(&self) -> Result<StoreReader, ContainerError> {
        let dir = sys::Dir::open(&self.dir).map_err(|source| ContainerError::Io {
            path: self.dir.clone(),
            source,
        })?;
        Ok(StoreReader {
            dir,
            path: self.dir.clone(),
            buf: Vec::new(),
        })
    }

    /// Finds a container by full ID, name (with or without the leading `/`), or unique ID prefix.
    pub fn find(&self, input: &str) -> Result<ContainerDir, ContainerError> {
        let not_found = || ContainerError::NotFound(input.to_string());
        if input.is_empty() {
            return Err(not_found());
        }
        // A full ID and a name are found without listing the store.
        if input.len() == 64 && !input.contains('/') {
            let dir = self.dir_of(input);
            if dir.record_path().exists() {
                return Ok(dir);
            }
        }
        if let Some(id) = self.name_owner(input.trim_start_matches('/'))? {
            return Ok(self.dir_of(&id));
        }
        // A prefix: only the directories it names are looked into.
        let all: Vec<ContainerDir> = self
            .ids()?
            .into_iter()
            .filter(|id| id.starts_with(input))
            .map(|id| self.dir_of(&id))
            .filter(|dir| dir.record_path().exists())
            .collect();
        let mut prefixed = all.iter();
        match (prefixed.next(), prefixed.next()) {
            (Some(dir), None) => Ok(dir.clone()),
            (Some(_), Some(_)) => Err(ContainerError::Ambiguous(input.to_string())),
            _ => Err(not_found()),
        }
    }

    /// The container already using `name`, if any: one lookup in the name index, so
    /// creating a container costs the same with a hundred stopped ones around.
    pub fn name_owner(&self, name: &str) -> Result<Option<String>, ContainerError> {
        let names = self.name_index()?;
        let id = match fs::read_link(names.join(name)) {
            Ok(target) => target.to_string_lossy().into_owned(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) if e.raw_os_error() == Some(libc::ENAMETOOLONG) => return Ok(None),
            Err(source) => {
                return Err(ContainerError::Io {
                    path: names.join(name),
                    source,
                });
            }
        };
        // An entry outlives its container only after a crash between the two steps of a
        // create or a removal: such an entry names nobody.
        let owner = self.dir_of(&id);
        Ok(owner
            .record()
            .is_ok_and(|r| r.name == name)
            .then_some(owner.id))
    }

    /// Records `name` as `id`'s, under the store lock, after `name_owner` found it free.
    pub fn claim_name(&self, name: &str, id: &str) -> Result<(), ContainerError> {
        let path = self.name_index()?.join(name);
        let io = |source| ContainerError::Io {
            path: path.clone(),
            source,
        };
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
        std::os::unix::fs::symlink(id, &path).map_err(io)
    }

    /// Forgets `name` if it is still `id`'s; under the store lock, so it cannot remove the
    /// entry of a container that took the name meanwhile.
    pub fn release_name(&self, name: &str, id: &str) -> Result<(), ContainerError> {
        let path = self.name_index()?.join(name);
        match fs::read_link(&path) {
            Ok(target) if target.as_os_str() == id => {
                fs::remove_file(&path).map_err(|source| ContainerError::Io { path, source })
            }
            _ => Ok(()),
        }
    }

    /// `<root>/container-names/<name>`: a symlink to the ID of the container using the name.
    /// A store from before the index gets it built from the records once, in a temporary
    /// directory renamed into place (the caller holds the store lock or only reads).
    fn name_index(&self) -> Result<PathBuf, ContainerError> {
        let names = self.dir.with_file_name("container-names");
        if names.is_dir() {
            return Ok(names);
        }
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ContainerError::Io { path, source }
        };
        // Built beside the containers, whose abandoned temporaries are swept.
        let work = self.dir.join(sys::temp_name("names"));
        fs::create_dir(&work).map_err(io(&work))?;
        let built = (|| {
            for dir in self.list()? {
                if let Ok(record) = dir.record()
                    && !record.name.is_empty()
                {
                    let entry = work.join(&record.name);
                    std::os::unix::fs::symlink(&dir.id, &entry).map_err(io(&entry))?;
                }
            }
            Ok(())
        })();
        let placed = built.and_then(|()| match fs::rename(&work, &names) {
            Ok(()) => Ok(()),
            // Built by another berth meanwhile.
            Err(_) if names.is_dir() => Ok(()),
            Err(source) => Err(ContainerError::Io {
                path: names.clone(),
                source,
            }),
        });
        let _ = sys::remove_tree(&work);
        placed.map(|()| names)
    }

    /// Sweeps directories abandoned in the store's directory by creations that crashed
    /// (before new containers were built in the store's tmp/) and by a crashed build of the
    /// name index. Reads the whole directory: `container prune` does it, not every command.
    pub fn sweep(&self) {
        sys::sweep_temps(&self.dir);
    }
}

/// Reads the records and states of many containers, as `ps` and `container prune` do:
/// each file is opened relative to the store's directory, read into one reused buffer, and
/// the record parsed only as far as listing needs ([`RecordSummary`]).
pub struct StoreReader {
    dir: sys::Dir,
    path: PathBuf,
    buf: Vec<u8>,
}

impl StoreReader {
    /// The recorded state of container `id` (see [`ContainerDir::state`]).
    pub fn state(&mut self, id: &str) -> Result<State, ContainerError> {
        let name = Path::new(id).join("state.json");
        match self.dir.read(&name, &mut self.buf) {
            Ok(bytes) => serde_json::from_slice(bytes).map_err(|source| ContainerError::Corrupt {
                path: self.path.join(&name),
                source,
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(State::default()),
            Err(source) => Err(ContainerError::Io {
                path: self.path.join(&name),
                source,
            }),
        }
    }

    /// What listing needs of container `id`'s record.
    pub fn summary(&mut self, id: &str) -> Result<RecordSummary, ContainerError> {
        let name = Path::new(id).join("container.json");
        let bytes = self
            .dir
            .read(&name, &mut self.buf)
            .map_err(|source| ContainerError::Io {
                path: self.path.join(&name),
                source,
            })?;
        serde_json::from_slice(bytes).map_err(|source| ContainerError::Corrupt {
            path: self.path.join(&name),
            source,
        })
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
