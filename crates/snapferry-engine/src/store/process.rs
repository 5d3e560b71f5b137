//! Whether the process that holds a local lock is still running, so that the lock a killed
//! run left behind is taken over instead of needing `snapferry unlock`.
//!
//! A pid alone proves nothing: pids are reused, they mean nothing on another machine or after
//! a reboot, and a container numbers its processes in its own namespace. So a lock records,
//! besides the pid, the kernel's boot id (`/proc/sys/kernel/random/boot_id`, a random UUID per
//! boot of one machine), the pid namespace (`/proc/self/ns/pid`) and the process's start time
//! (field 22 of `/proc/<pid>/stat`, clock ticks since boot). A holder is *gone* only when the
//! boot and the namespace are ours and `/proc/<pid>` is missing, belongs to a process started
//! at another time, or is a zombie. Anything we cannot see for sure (another machine, another
//! boot, another container, a lock without these fields, no `/proc`, a `/proc` that hides
//! other users' processes) is *unknown*, and an unknown holder is never taken over.

use std::sync::OnceLock;

use super::LockInfo;

/// What identifies this process beyond its pid; each part is `None` where `/proc` lacks it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Identity {
    pub boot_id: Option<String>,
    pub pid_namespace: Option<String>,
    pub start_time: Option<u64>,
}

/// This process's identity, read once.
pub(crate) fn this_process() -> &'static Identity {
    static IDENTITY: OnceLock<Identity> = OnceLock::new();
    IDENTITY.get_or_init(|| Identity {
        boot_id: boot_id(),
        pid_namespace: std::fs::read_link("/proc/self/ns/pid")
            .ok()
            .map(|p| p.to_string_lossy().into_owned()),
        start_time: stat(std::process::id())
            .ok()
            .flatten()
            .map(|s| s.start_time),
    })
}

fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// The start time of process `pid` (clock ticks since boot), if it runs and `/proc` shows it.
pub fn start_time_of(pid: u32) -> Option<u64> {
    stat(pid).ok().flatten().map(|s| s.start_time)
}

/// The parts of `/proc/<pid>/stat` that tell a live process from a dead one.
struct Stat {
    /// `R`, `S`, `D`, … ; `Z` (zombie) and `X` (dead) have exited.
    state: char,
    start_time: u64,
}

/// `None` when there is no such process.
fn stat(pid: u32) -> std::io::Result<Option<Stat>> {
    let text = match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(parse_stat(&text))
}

/// Fields after the command name, which is in parentheses and may itself hold spaces and
/// parentheses: so split after the *last* `)`. There, field 3 (state) is first and field 22
/// (start time) is the 20th.
fn parse_stat(text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let start_time = fields.nth(18)?.parse().ok()?;
    Some(Stat { state, start_time })
}

/// Whether a lock's holder still runs, as far as this process can see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Liveness {
    /// The same process is running on this host, in this boot.
    Alive,
    /// It has exited; the text says how we know (shown when the lock is taken over).
    Gone(String),
    /// It cannot be seen from here; the text says why (shown when the lock is refused).
    Unknown(String),
}

/// Whether `holder` (a lock taken on this machine or another) still runs.
pub fn liveness(holder: &LockInfo) -> Liveness {
    liveness_against(holder, this_process())
}

fn liveness_against(holder: &LockInfo, me: &Identity) -> Liveness {
    let pid = holder.pid;
    let (Some(theirs), Some(ours)) = (&holder.boot_id, &me.boot_id) else {
        return Liveness::Unknown(
            "the lock does not record which boot of which machine took it".to_owned(),
        );
    };
    if theirs != ours {
        return Liveness::Unknown(format!(
            "it was taken on {} in another boot, or on another machine",
            holder.host
        ));
    }
    if holder.pid_namespace.is_none() || holder.pid_namespace != me.pid_namespace {
        return Liveness::Unknown(
            "it was taken in another pid namespace (another container on this machine)".to_owned(),
        );
    }
    let Some(start_time) = holder.start_time else {
        return Liveness::Unknown("the lock does not record its process's start time".to_owned());
    };
    match stat(pid) {
        Ok(Some(s)) if s.start_time != start_time => Liveness::Gone(format!(
            "process {pid} has exited (its pid now belongs to another process)"
        )),
        Ok(Some(s)) if matches!(s.state, 'Z' | 'X' | 'x') => {
            Liveness::Gone(format!("process {pid} has exited"))
        }
        Ok(Some(_)) => Liveness::Alive,
        // With `hidepid`, /proc shows only our own processes: a missing pid proves nothing.
        Ok(None) if stat(1).ok().flatten().is_none() => Liveness::Unknown(format!(
            "this /proc hides other users' processes, so whether process {pid} runs cannot be seen"
        )),
        Ok(None) => Liveness::Gone(format!("process {pid} has exited")),
        Err(e) => Liveness::Unknown(format!("/proc/{pid}/stat could not be read ({e})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_is_split_after_the_last_parenthesis() {
        let line = "4242 (my (odd) cmd) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        let s = parse_stat(line).unwrap();
        assert_eq!(s.state, 'S');
        assert_eq!(s.start_time, 987_654);
        assert!(parse_stat("4242 (cut").is_none());
    }

    fn holder_like_me() -> LockInfo {
        LockInfo::for_this_process("test")
    }

    #[test]
    fn this_process_is_alive() {
        assert!(
            this_process().boot_id.is_some(),
            "these tests need Linux /proc"
        );
        assert_eq!(liveness(&holder_like_me()), Liveness::Alive);
    }

    #[test]
    fn a_reaped_child_is_gone_and_a_running_one_is_alive() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id();
        let holder = LockInfo {
            pid,
            start_time: start_time_of(pid),
            ..holder_like_me()
        };
        assert_eq!(liveness(&holder), Liveness::Alive);
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(
            liveness(&holder),
            Liveness::Gone(format!("process {pid} has exited"))
        );
    }

    #[test]
    fn a_reused_pid_is_not_the_holder() {
        let holder = LockInfo {
            start_time: this_process().start_time.map(|t| t + 1),
            ..holder_like_me()
        };
        assert_eq!(
            liveness(&holder),
            Liveness::Gone(format!(
                "process {} has exited (its pid now belongs to another process)",
                std::process::id()
            ))
        );
    }

    #[test]
    fn another_boot_another_namespace_or_an_old_lock_is_unknown() {
        let me = holder_like_me();
        let other_boot = LockInfo {
            boot_id: Some("0c1d…".into()),
            host: "ci-7".into(),
            ..me.clone()
        };
        assert_eq!(
            liveness(&other_boot),
            Liveness::Unknown("it was taken on ci-7 in another boot, or on another machine".into())
        );
        let other_ns = LockInfo {
            pid_namespace: Some("pid:[1]".into()),
            ..me.clone()
        };
        assert!(matches!(liveness(&other_ns), Liveness::Unknown(m) if m.contains("pid namespace")));
        let old = LockInfo {
            boot_id: None,
            pid_namespace: None,
            start_time: None,
            ..me
        };
        assert!(matches!(liveness(&old), Liveness::Unknown(m) if m.contains("does not record")));
    }
}
