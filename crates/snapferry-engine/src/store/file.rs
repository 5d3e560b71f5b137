//! The local state file (`.snapferry/<name>.state.json` by default) and its lock file
//! (`<state>.lock`, created exclusively). Every save writes a temp file in the same
//! directory, fsyncs it, renames it over the state and fsyncs the directory, so a crash
//! leaves the old or the new document, never a torn one. Files are mode 0600.
//!
//! The lock file holds its holder's [`LockInfo`], including what identifies the process
//! beyond its pid ([`super::process`]). A lock whose holder is gone from this machine (same
//! boot, same pid namespace, and that process no longer runs) is taken over, and the takeover
//! names it; a live holder, or one on another machine, is refused. Every change to the lock
//! file happens under an exclusive `flock` of `<state>.lock.mutex` (an empty file left in
//! place), so two runs that both find a dead holder take turns: the second finds the first's
//! live lock and is refused, and `unlock` removes only the lock it showed.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use async_trait::async_trait;

use super::process::{self, Liveness};
use super::{
    Acquired, LockInfo, LockRecord, StateStore, StoreError, Takeover, decode_state, encode_state,
    held_by_live_process, held_unknown,
};
use crate::state::StateDoc;

/// A state file and its lock file beside it.
#[derive(Debug, Clone)]
pub struct FileStore {
    path: PathBuf,
    lock_path: PathBuf,
    mutex_path: PathBuf,
}

impl FileStore {
    /// Stores the state at `path`; the lock is `path` with `.lock` appended.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        let mut lock = path.clone().into_os_string();
        lock.push(".lock");
        let mut mutex = lock.clone();
        mutex.push(".mutex");
        FileStore {
            path,
            lock_path: PathBuf::from(lock),
            mutex_path: PathBuf::from(mutex),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn lock_path(&self) -> &Path {
        &self.lock_path
    }

    fn io(&self, action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StoreError {
        let location = path.display().to_string();
        move |source| StoreError::Io {
            location,
            action,
            source,
        }
    }

    fn dir(&self) -> PathBuf {
        match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }

    fn save_blocking(&self, bytes: &[u8]) -> Result<(), StoreError> {
        let dir = self.dir();
        fs::create_dir_all(&dir).map_err(self.io("create the directory", &dir))?;
        // tempfile creates the file with mode 0600 on Unix.
        let mut tmp = tempfile::Builder::new()
            .prefix(".snapferry-state-")
            .tempfile_in(&dir)
            .map_err(self.io("create a temporary file in", &dir))?;
        tmp.write_all(bytes).map_err(self.io("write", tmp.path()))?;
        tmp.as_file()
            .sync_all()
            .map_err(self.io("fsync", tmp.path()))?;
        set_private(tmp.as_file()).map_err(self.io("set mode 0600 on", tmp.path()))?;
        tmp.persist(&self.path).map_err(|e| StoreError::Io {
            location: self.path.display().to_string(),
            action: "rename over",
            source: e.error,
        })?;
        sync_dir(&dir).map_err(self.io("fsync the directory", &dir))?;
        Ok(())
    }

    /// Runs `f` holding an exclusive `flock` on the mutex file beside the lock, so that every
    /// change to the lock file (create, take over, release, remove) by any snapferry on this
    /// machine happens one at a time. The kernel drops the flock when its process dies, so a
    /// crash inside `f` never leaves the mutex held.
    fn with_mutex<T>(&self, f: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
        let dir = self.dir();
        fs::create_dir_all(&dir).map_err(self.io("create the directory", &dir))?;
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mutex = options
            .open(&self.mutex_path)
            .map_err(self.io("open the lock mutex", &self.mutex_path))?;
        mutex
            .lock()
            .map_err(self.io("lock the lock mutex", &self.mutex_path))?;
        let result = f();
        let _ = mutex.unlock();
        result
    }

    fn try_lock_blocking(&self, info: &LockInfo) -> Result<Acquired, StoreError> {
        self.with_mutex(|| {
            if let Some(version) = self.create_lock_blocking(info)? {
                return Ok(Acquired {
                    version,
                    took_over: None,
                });
            }
            let Some(record) = self.read_lock_blocking()? else {
                // Released between our create and this read: the lock is free now.
                let version = self.create_lock_blocking(info)?.ok_or_else(|| {
                    self.held(LockInfo::unreadable("lock file"), held_unknown("it changed while it was read"))
                })?;
                return Ok(Acquired {
                    version,
                    took_over: None,
                });
            };
            match process::liveness(&record.info) {
                Liveness::Gone(reason) => {
                    self.remove_lock_blocking()?;
                    let version = self.create_lock_blocking(info)?.ok_or_else(|| {
                        self.held(
                            LockInfo::unreadable("lock file"),
                            held_unknown("another program created it while it was taken over"),
                        )
                    })?;
                    tracing::warn!(previous = %record.info, %reason, "took over the lock of a run that is gone");
                    Ok(Acquired {
                        version,
                        took_over: Some(Takeover {
                            location: self.location(),
                            previous: record.info,
                            reason,
                        }),
                    })
                }
                Liveness::Alive => Err(self.held(record.info, held_by_live_process())),
                Liveness::Unknown(why) => Err(self.held(record.info, held_unknown(&why))),
            }
        })
    }

    fn held(&self, holder: LockInfo, detail: String) -> StoreError {
        StoreError::LockHeld {
            location: self.location(),
            holder: Box::new(holder),
            detail,
        }
    }

    /// Creates the lock file with `info` if there is none: its version, or `None` if one exists.
    fn create_lock_blocking(&self, info: &LockInfo) -> Result<Option<String>, StoreError> {
        let dir = self.dir();
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(&self.lock_path) {
            Ok(mut file) => {
                let body = serde_json::to_vec_pretty(info).expect("lock info serializes");
                file.write_all(&body)
                    .and_then(|()| file.sync_all())
                    .map_err(self.io("write the lock", &self.lock_path))?;
                sync_dir(&dir).map_err(self.io("fsync the directory", &dir))?;
                Ok(Some(version_of(&body)))
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(None),
            Err(e) => Err(self.io("create the lock", &self.lock_path)(e)),
        }
    }

    fn read_lock_blocking(&self) -> Result<Option<LockRecord>, StoreError> {
        match fs::read(&self.lock_path) {
            Ok(bytes) => Ok(Some(LockRecord {
                info: serde_json::from_slice(&bytes)
                    .unwrap_or_else(|_| LockInfo::unreadable("lock file")),
                version: version_of(&bytes),
            })),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io("read the lock", &self.lock_path)(e)),
        }
    }

    fn remove_lock_blocking(&self) -> Result<(), StoreError> {
        match fs::remove_file(&self.lock_path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.io("remove the lock", &self.lock_path)(e)),
        }
    }
}

/// A lock file's version is its content: every acquisition writes a new random id.
fn version_of(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(unix)]
fn set_private(file: &File) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(fs::Permissions::from_mode(0o600))
}

#[cfg(not(unix))]
fn set_private(_file: &File) -> io::Result<()> {
    Ok(())
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .expect("state store task panicked")
}

#[async_trait]
impl StateStore for FileStore {
    fn location(&self) -> String {
        self.path.display().to_string()
    }

    async fn load(&self) -> Result<Option<StateDoc>, StoreError> {
        let this = self.clone();
        blocking(move || match fs::read(&this.path) {
            Ok(bytes) => decode_state(&this.location(), &bytes).map(Some),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(this.io("read", &this.path)(e)),
        })
        .await
    }

    async fn save(&self, doc: &StateDoc) -> Result<(), StoreError> {
        let bytes = encode_state(doc);
        let this = self.clone();
        blocking(move || this.save_blocking(&bytes)).await
    }

    async fn try_lock(&self, info: &LockInfo) -> Result<Acquired, StoreError> {
        let this = self.clone();
        let info = info.clone();
        blocking(move || this.try_lock_blocking(&info)).await
    }

    async fn read_lock(&self) -> Result<Option<LockRecord>, StoreError> {
        let this = self.clone();
        blocking(move || this.read_lock_blocking()).await
    }

    async fn unlock(&self, info: &LockInfo, _version: &str) -> Result<(), StoreError> {
        let this = self.clone();
        let info = info.clone();
        blocking(move || {
            this.with_mutex(|| match this.read_lock_blocking()? {
                Some(held) if held.info.id == info.id => this.remove_lock_blocking(),
                Some(held) => Err(StoreError::LockNotOurs {
                    location: this.location(),
                    holder: Box::new(held.info),
                }),
                None => Ok(()),
            })
        })
        .await
    }

    async fn remove_lock(&self, seen: &LockRecord) -> Result<bool, StoreError> {
        let this = self.clone();
        let seen = seen.clone();
        blocking(move || {
            this.with_mutex(|| match this.read_lock_blocking()? {
                Some(now) if now.version == seen.version => {
                    this.remove_lock_blocking()?;
                    Ok(true)
                }
                Some(now) => Err(StoreError::LockChanged {
                    location: this.location(),
                    now: format!("now held by {}", now.info),
                }),
                None => Ok(false),
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use snapferry_plan::NodeId;

    use super::*;
    use crate::change::FieldValue;
    use crate::state::NodeStatus;
    use crate::store::LockGuard;

    fn doc() -> StateDoc {
        let mut d = StateDoc::new("prod-copy", "fp1", "0.1.0");
        let n = NodeId::new("role", "r");
        d.transition(&n, NodeStatus::Applying).unwrap();
        let s = d.transition(&n, NodeStatus::Done).unwrap();
        s.outputs
            .insert("arn".into(), FieldValue::known("arn:aws:iam::1:role/r"));
        s.outputs.insert(
            "token".into(),
            FieldValue::Sensitive(Some(serde_json::json!("s3cr3t-value"))),
        );
        d
    }

    #[tokio::test]
    async fn save_is_atomic_private_and_reads_back_without_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().join("nested/p.state.json"));
        assert_eq!(store.load().await.unwrap(), None);
        store.save(&doc()).await.unwrap();
        let text = fs::read_to_string(store.path()).unwrap();
        assert!(!text.contains("s3cr3t-value"), "secret persisted: {text}");
        assert!(text.contains("arn:aws:iam::1:role/r"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(store.path()).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let back = store.load().await.unwrap().unwrap();
        let n = NodeId::new("role", "r");
        assert_eq!(
            back.nodes[&n].outputs["arn"].as_str(),
            Some("arn:aws:iam::1:role/r")
        );
        assert!(back.nodes[&n].outputs["token"].is_redacted());
        // No temp files are left behind.
        let names: Vec<_> = fs::read_dir(dir.path().join("nested"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec!["p.state.json".to_owned()]);
    }

    #[tokio::test]
    async fn corrupted_state_is_refused_and_left_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.state.json");
        fs::write(&path, b"{\"format_version\": 1, \"plan_na").unwrap();
        let err = FileStore::new(&path).load().await.unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with(&format!(
                "the state at {} is corrupted (not valid JSON at line 1 column 30)",
                path.display()
            )),
            "{msg}"
        );
        assert!(msg.contains("move it aside to start over"));
        assert_eq!(
            fs::read(&path).unwrap(),
            b"{\"format_version\": 1, \"plan_na"
        );
    }

    #[tokio::test]
    async fn unknown_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.state.json");
        fs::write(&path, br#"{"format_version": 9}"#).unwrap();
        let msg = FileStore::new(&path).load().await.unwrap_err().to_string();
        assert_eq!(
            msg,
            format!(
                "the state at {} has format version 9, this snapferry reads version 1; use a matching snapferry release",
                path.display()
            )
        );
    }

    #[tokio::test]
    async fn a_live_holder_is_refused_by_name_and_only_it_releases() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn StateStore> = Arc::new(FileStore::new(dir.path().join("p.state.json")));
        let mut first = LockInfo::for_this_process("snapferry apply a.yaml");
        first.user = "alice".into();
        first.host = "ci-1".into();
        let guard = LockGuard::acquire(store.clone(), first.clone(), Duration::ZERO)
            .await
            .unwrap();
        assert!(guard.took_over().is_none());
        let err = LockGuard::acquire(
            store.clone(),
            LockInfo::for_this_process("b"),
            Duration::ZERO,
        )
        .await
        .err()
        .unwrap();
        match &err {
            StoreError::LockHeld { holder, .. } => assert_eq!(**holder, first),
            other => panic!("{other:?}"),
        }
        // This test process is the holder, and it is alive.
        assert_eq!(
            err.to_string(),
            format!(
                "the state at {} is locked by {first}; that process is still running on this \
                 machine: wait for it to finish (`--lock-timeout SECONDS` waits for it)",
                store.location()
            )
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for file in ["p.state.json.lock", "p.state.json.lock.mutex"] {
                let mode = fs::metadata(dir.path().join(file))
                    .unwrap()
                    .permissions()
                    .mode();
                assert_eq!(mode & 0o777, 0o600, "{file}");
            }
        }
        // Someone else's release is refused; the holder's works.
        assert!(matches!(
            store.unlock(&LockInfo::for_this_process("x"), "").await,
            Err(StoreError::LockNotOurs { .. })
        ));
        guard.release().await.unwrap();
        assert_eq!(store.lock_holder().await.unwrap(), None);
    }

    /// A child that ran `sleep` and was killed and reaped: a lock it held is a dead run's.
    fn dead_holder() -> LockInfo {
        let mut child = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .unwrap();
        let pid = child.id();
        let info = LockInfo {
            pid,
            start_time: super::process::start_time_of(pid),
            user: "ci".into(),
            command: "snapferry apply killed.yaml".into(),
            ..LockInfo::for_this_process("")
        };
        assert!(info.start_time.is_some());
        child.kill().unwrap();
        child.wait().unwrap();
        info
    }

    fn write_lock(store: &FileStore, info: &LockInfo) {
        fs::create_dir_all(store.path().parent().unwrap()).unwrap();
        fs::write(store.lock_path(), serde_json::to_vec(info).unwrap()).unwrap();
    }

    #[tokio::test]
    async fn the_lock_of_a_dead_process_is_taken_over_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().join("p.state.json"));
        let dead = dead_holder();
        write_lock(&store, &dead);
        let me = LockInfo::for_this_process("snapferry apply again.yaml");
        let acquired = store.try_lock(&me).await.unwrap();
        let takeover = acquired.took_over.expect("taken over");
        assert_eq!(takeover.previous, dead);
        assert_eq!(takeover.reason, format!("process {} has exited", dead.pid));
        assert_eq!(
            takeover.to_string(),
            format!(
                "the state at {} was locked by {dead}; process {} has exited, so this run took \
                 the lock over",
                store.location(),
                dead.pid
            )
        );
        assert_eq!(store.lock_holder().await.unwrap(), Some(me.clone()));
        store.unlock(&me, &acquired.version).await.unwrap();
        assert_eq!(store.lock_holder().await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_running_process_or_another_machine_keeps_its_lock() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().join("p.state.json"));
        let mut child = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .unwrap();
        let live = LockInfo {
            pid: child.id(),
            start_time: super::process::start_time_of(child.id()),
            ..LockInfo::for_this_process("snapferry apply live.yaml")
        };
        write_lock(&store, &live);
        let err = store
            .try_lock(&LockInfo::for_this_process("b"))
            .await
            .unwrap_err();
        assert!(
            err.to_string().ends_with("that process is still running on this machine: wait for it to finish (`--lock-timeout SECONDS` waits for it)"),
            "{err}"
        );
        child.kill().unwrap();
        child.wait().unwrap();

        let remote = LockInfo {
            host: "runner-7".into(),
            boot_id: Some("6f1e0c9a-0000-4000-8000-000000000000".into()),
            ..dead_holder()
        };
        write_lock(&store, &remote);
        let err = store
            .try_lock(&LockInfo::for_this_process("b"))
            .await
            .unwrap_err();
        assert!(
            err.to_string().ends_with(
                "; it was taken on runner-7 in another boot, or on another machine, so snapferry \
                 cannot tell whether that run is still going: wait for it to finish \
                 (`--lock-timeout SECONDS` waits for it), or if that run is gone, run \
                 `snapferry unlock`"
            ),
            "{err}"
        );
        assert_eq!(store.lock_holder().await.unwrap(), Some(remote));

        // An unreadable lock file (a crash between create and write) is never taken over.
        fs::write(store.lock_path(), b"").unwrap();
        let err = store
            .try_lock(&LockInfo::for_this_process("b"))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("run `snapferry unlock`"), "{err}");
    }

    #[test]
    fn of_many_runs_that_find_a_dead_lock_exactly_one_takes_it_over() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().join("p.state.json"));
        let dead = dead_holder();
        for round in 0..10 {
            write_lock(&store, &dead);
            let barrier = Arc::new(std::sync::Barrier::new(8));
            let runs: Vec<_> = (0..8)
                .map(|i| {
                    let (store, barrier) = (store.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        let me = LockInfo::for_this_process(&format!("run {i}"));
                        barrier.wait();
                        (me.clone(), store.try_lock_blocking(&me))
                    })
                })
                .collect::<Vec<_>>()
                .into_iter()
                .map(|t| t.join().unwrap())
                .collect();
            let winners: Vec<&LockInfo> = runs
                .iter()
                .filter(|(_, r)| r.as_ref().is_ok_and(|a| a.took_over.is_some()))
                .map(|(me, _)| me)
                .collect();
            assert_eq!(winners.len(), 1, "round {round}: {runs:?}");
            let winner = winners[0];
            for (me, result) in &runs {
                if me != winner {
                    match result {
                        Err(StoreError::LockHeld { holder, .. }) => assert_eq!(&**holder, winner),
                        other => panic!("round {round}: {other:?}"),
                    }
                }
            }
            assert_eq!(store.read_lock_blocking().unwrap().unwrap().info, *winner);
        }
    }

    #[tokio::test]
    async fn unlock_removes_only_the_lock_it_showed() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().join("p.state.json"));
        let first = LockInfo::for_this_process("first");
        store.try_lock(&first).await.unwrap();
        let shown = store.read_lock().await.unwrap().unwrap();
        assert_eq!(shown.info, first);
        // Meanwhile the lock changed hands.
        let second = LockInfo::for_this_process("second");
        write_lock(&store, &second);
        let err = store.remove_lock(&shown).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "the lock on the state at {} changed since it was shown (now held by {second}); \
                 nothing was removed: run `snapferry unlock` again to see who holds it now",
                store.location()
            )
        );
        assert_eq!(store.lock_holder().await.unwrap(), Some(second));
        let shown = store.read_lock().await.unwrap().unwrap();
        assert!(store.remove_lock(&shown).await.unwrap());
        assert_eq!(store.lock_holder().await.unwrap(), None);
        assert!(!store.remove_lock(&shown).await.unwrap(), "already gone");
    }

    #[tokio::test(start_paused = true)]
    async fn lock_timeout_waits_for_release() {
        let store = Arc::new(crate::store::MemoryStore::new());
        let holder = LockInfo::for_this_process("first");
        let acquired = store.try_lock(&holder).await.unwrap();
        let s2 = store.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(3)).await;
            s2.unlock(&holder, &acquired.version).await.unwrap();
        });
        let guard = LockGuard::acquire(
            store.clone(),
            LockInfo::for_this_process("second"),
            Duration::from_secs(30),
        )
        .await
        .unwrap();
        assert_eq!(guard.info().command, "second");
        guard.release().await.unwrap();
    }
}
