//! Which process owns something (a prune lease, a restore stage), told apart so that a
//! later process can decide whether the owner still lives: its pid, its start time and
//! the boot it ran in. A pid alone is not enough (pids are reused); with the start time
//! (clock ticks after boot, `/proc/<pid>/stat` field 22) and the kernel's boot id a live
//! process matches only itself.

use std::fmt;

/// A process of this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessId {
    pub pid: u32,
    /// Start time in clock ticks after boot.
    pub start_ticks: u64,
    /// `/proc/sys/kernel/random/boot_id` without dashes.
    pub boot_id: String,
}

impl ProcessId {
    /// This process, or `None` where `/proc` does not tell (then nothing it owns can be
    /// found dead, and what it leaves behind waits for its expiry).
    pub fn current() -> Option<ProcessId> {
        let pid = std::process::id();
        Some(ProcessId {
            pid,
            start_ticks: start_ticks(pid)?,
            boot_id: boot_id()?,
        })
    }

    /// Whether this process is gone. Only a process of this machine can be judged: the
    /// caller checks the host first.
    pub fn is_gone(&self) -> bool {
        let Some(boot) = boot_id() else {
            return false; // cannot tell: assume it lives
        };
        if boot != self.boot_id {
            return true; // the machine rebooted since
        }
        start_ticks(self.pid) != Some(self.start_ticks)
    }

    /// A short form for names: `<boot id, 8 hex>.<pid>.<start ticks>`.
    pub fn tag(&self) -> String {
        format!(
            "{}.{}.{}",
            &self.boot_id[..self.boot_id.len().min(8)],
            self.pid,
            self.start_ticks
        )
    }

    /// Parses [`tag`](Self::tag); the boot id is then only its first 8 hex digits, which
    /// [`is_gone_by_tag`] compares.
    fn parse_tag(text: &str) -> Option<ProcessId> {
        let mut parts = text.split('.');
        let boot = parts.next()?;
        let pid = parts.next()?.parse().ok()?;
        let start_ticks = parts.next()?.parse().ok()?;
        let plain = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
        (parts.next().is_none() && plain(boot, 8)).then(|| ProcessId {
            pid,
            start_ticks,
            boot_id: boot.to_string(),
        })
    }
}

impl fmt::Display for ProcessId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pid {}", self.pid)
    }
}

/// For a [`ProcessId::tag`]: `Some(true)` if that process is gone, `Some(false)` if it
/// may live, `None` if the text is no tag.
pub fn is_gone_by_tag(tag: &str) -> Option<bool> {
    let p = ProcessId::parse_tag(tag)?;
    let Some(boot) = boot_id() else {
        return Some(false);
    };
    if !boot.starts_with(&p.boot_id) {
        return Some(true);
    }
    Some(start_ticks(p.pid) != Some(p.start_ticks))
}

fn boot_id() -> Option<String> {
    let text = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let id: String = text.trim().chars().filter(|c| *c != '-').collect();
    (id.len() >= 8).then_some(id)
}

/// Field 22 of `/proc/<pid>/stat` of a process that runs: `None` for a zombie (dead,
/// not yet reaped: a daemon whose parent is gone may stay one for long) or no process.
/// The command name (field 2) is in parentheses and may hold anything, so fields are
/// counted after its last `)`.
fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
    if matches!(fields.next(), Some("Z") | Some("X") | None) {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_lives_and_a_finished_one_is_gone() {
        let me = ProcessId::current().expect("/proc is mounted");
        assert!(!me.is_gone());
        assert_eq!(is_gone_by_tag(&me.tag()), Some(false));

        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = ProcessId {
            pid: child.id(),
            start_ticks: start_ticks(child.id()).unwrap_or(0),
            boot_id: me.boot_id.clone(),
        };
        child.wait().unwrap();
        assert!(dead.is_gone());
        assert_eq!(is_gone_by_tag(&dead.tag()), Some(true));

        // Same pid, another start time: a reused pid is not the owner.
        let reused = ProcessId {
            start_ticks: me.start_ticks + 1,
            ..me.clone()
        };
        assert!(reused.is_gone());
        let other_boot = ProcessId {
            boot_id: "00000000".into(),
            ..me
        };
        assert!(other_boot.is_gone());
    }

    #[test]
    fn tags_round_trip_and_junk_is_no_tag() {
        assert_eq!(
            ProcessId::parse_tag("0123abcd.42.777"),
            Some(ProcessId {
                pid: 42,
                start_ticks: 777,
                boot_id: "0123abcd".into()
            })
        );
        for junk in ["", "x.1.2", "0123abcd.1", "0123abcd.1.2.3", "0123abcd.-1.2"] {
            assert_eq!(is_gone_by_tag(junk), None, "{junk}");
        }
    }
}
