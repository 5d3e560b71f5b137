//! The local state file (`.snapferry/<name>.state.json` by default) and its lock file
//! (`<state>.lock`, created exclusively). Every save writes a temp file in the same
//! directory, fsyncs it, renames it over the state and fsyncs the directory, so a crash
//! leaves the old or the new document, never a torn one. Files are mode 0600.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use async_trait::async_trait;

use super::{LockInfo, StateStore, StoreError, decode_state, encode_state};
use crate::state::StateDoc;

/// A state file and its lock file beside it.
#[derive(Debug, Clone)]
pub struct FileStore {
    path: PathBuf,
    lock_path: PathBuf,
}

impl FileStore {
    /// Stores the state at `path`; the lock is `path` with `.lock` appended.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        let mut lock = path.clone().into_os_string();
        lock.push(".lock");
        FileStore {
            path,
            lock_path: PathBuf::from(lock),
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

    fn try_lock_blocking(&self, info: &LockInfo) -> Result<(), StoreError> {
        let dir = self.dir();
        fs::create_dir_all(&dir).map_err(self.io("create the directory", &dir))?;
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
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let holder = self.read_lock_blocking()?.unwrap_or_else(unreadable_lock);
                Err(StoreError::LockHeld {
                    location: self.path.display().to_string(),
                    holder: Box::new(holder),
                })
            }
            Err(e) => Err(self.io("create the lock", &self.lock_path)(e)),
        }
    }

    fn read_lock_blocking(&self) -> Result<Option<LockInfo>, StoreError> {
        match fs::read(&self.lock_path) {
            Ok(bytes) => Ok(Some(
                serde_json::from_slice(&bytes).unwrap_or_else(|_| unreadable_lock()),
            )),
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

/// A lock file whose body cannot be read (a crash between create and write): still a lock.
fn unreadable_lock() -> LockInfo {
    LockInfo {
        id: String::new(),
        user: "unknown".to_owned(),
        host: "unknown".to_owned(),
        pid: 0,
        created_at: chrono::DateTime::UNIX_EPOCH,
        command: "(unreadable lock file)".to_owned(),
    }
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

    async fn try_lock(&self, info: &LockInfo) -> Result<(), StoreError> {
        let this = self.clone();
        let info = info.clone();
        blocking(move || this.try_lock_blocking(&info)).await
    }

    async fn lock_holder(&self) -> Result<Option<LockInfo>, StoreError> {
        let this = self.clone();
        blocking(move || this.read_lock_blocking()).await
    }

    async fn unlock(&self, info: &LockInfo) -> Result<(), StoreError> {
        let this = self.clone();
        let info = info.clone();
        blocking(move || match this.read_lock_blocking()? {
            Some(holder) if holder.id == info.id => this.remove_lock_blocking(),
            Some(holder) => Err(StoreError::LockNotOurs {
                location: this.location(),
                holder: Box::new(holder),
            }),
            None => Ok(()),
        })
        .await
    }

    async fn force_unlock(&self) -> Result<Option<LockInfo>, StoreError> {
        let this = self.clone();
        blocking(move || {
            let holder = this.read_lock_blocking()?;
            this.remove_lock_blocking()?;
            Ok(holder)
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
    async fn second_lock_is_refused_naming_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn StateStore> = Arc::new(FileStore::new(dir.path().join("p.state.json")));
        let mut first = LockInfo::for_this_process("snapferry apply a.yaml");
        first.user = "alice".into();
        first.host = "ci-1".into();
        let guard = LockGuard::acquire(store.clone(), first.clone(), Duration::ZERO)
            .await
            .unwrap();
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
        assert!(err.to_string().contains("alice@ci-1"), "{err}");
        assert!(err.to_string().contains("snapferry unlock"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let lock = dir.path().join("p.state.json.lock");
            assert_eq!(
                fs::metadata(&lock).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        // Someone else's unlock is refused; the holder's works.
        assert!(matches!(
            store.unlock(&LockInfo::for_this_process("x")).await,
            Err(StoreError::LockNotOurs { .. })
        ));
        guard.release().await.unwrap();
        assert_eq!(store.lock_holder().await.unwrap(), None);
    }

    #[tokio::test]
    async fn force_unlock_returns_the_stale_holder() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().join("p.state.json"));
        let info = LockInfo::for_this_process("crashed");
        store.try_lock(&info).await.unwrap();
        assert_eq!(store.force_unlock().await.unwrap(), Some(info));
        assert_eq!(store.lock_holder().await.unwrap(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn lock_timeout_waits_for_release() {
        let store = Arc::new(crate::store::MemoryStore::new());
        let holder = LockInfo::for_this_process("first");
        store.try_lock(&holder).await.unwrap();
        let s2 = store.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(3)).await;
            s2.unlock(&holder).await.unwrap();
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
