//! A full cache disk (issue 10, item 12): with CAIRN_CACHE_DIR on a small tmpfs that
//! fills up, the mount daemon (the real binary) must not die — its log is on that disk,
//! and a failed write to stderr used to panic and abort it. A job then fails (or is
//! refused) with "no space left on the catalog's disk", the daemon keeps serving reads,
//! and the next job succeeds once there is room.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::cli_env::Env;
use crate::support::fixture::SourceTree;
use crate::support::mount::fuse_available;

const NO_SPACE: &str = "no space left on the catalog's disk";

/// A tmpfs of `kib` KiB mounted on `dir`; unmounted (lazily) on drop, on every path.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, kib: u64) -> Tmpfs {
        fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "tmpfs"])
            .arg(dir)
            .status()
            .expect("run mount")
            .success();
        assert!(
            ok,
            "cannot mount a tmpfs on {} (root is needed)",
            dir.display()
        );
        Tmpfs(dir.to_path_buf())
    }

    /// Fills the disk, leaving about `spare` bytes free.
    fn fill(&self, spare: u64) {
        let free = || {
            // SAFETY: statvfs fills the struct we own from a valid NUL-terminated path.
            let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
            let path = std::ffi::CString::new(self.0.to_str().unwrap()).unwrap();
            assert_eq!(unsafe { libc::statvfs(path.as_ptr(), &mut st) }, 0);
            st.f_bavail * st.f_frsize
        };
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.0.join("fill"))
            .unwrap();
        let block = vec![0u8; 4096];
        while free() > spare {
            if f.write_all(&block).is_err() {
                break;
            }
        }
    }

    fn free_all(&self) {
        let _ = fs::remove_file(self.0.join("fill"));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn daemon_alive(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit_once(')')
                .is_some_and(|(_, r)| !r.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

#[test]
fn a_full_cache_disk_fails_the_job_not_the_daemon() {
    if !fuse_available() {
        return;
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true: mounting the test's tmpfs needs root"
        );
        eprintln!("WARNING: skipping the full-disk test: mounting a tmpfs needs root");
        return;
    }
    let env = Env::new();
    let tmpfs = Tmpfs::mount(&env.path("cache"), 4096);
    env.init();
    let daemon = env.mount_background();
    let src = env.path("src");
    let tree = SourceTree::new(&src);
    tree.file("a", b"first");
    env.run(&["instance", "add", "w", "--path", src.to_str().unwrap()])
        .ok();
    env.run(&["snapshot", "w"]).ok();
    let first = fs::read(env.mnt().join("w/latest/a")).unwrap();
    assert_eq!(first, b"first");

    // Completely full: no request can be recorded, and once the log's last page is
    // full every log line fails (each request refreshes the catalog, which warns).
    tmpfs.fill(0);
    for i in 0..8 {
        env.run(&["snapshot", "w"]).failed().stderr_has(NO_SPACE);
        let target = env.path(&format!("restored-{i}"));
        env.run(&[
            "restore",
            "w",
            "latest",
            "--target",
            target.to_str().unwrap(),
        ])
        .failed()
        .stderr_has(NO_SPACE);
        assert_eq!(fs::read(env.mnt().join("w/latest/a")).unwrap(), b"first");
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    assert!(daemon_alive(daemon.pid()), "the daemon died of a full disk");
    assert_eq!(fs::read(env.mnt().join("w/latest/a")).unwrap(), b"first");

    // Room for the job's row, not for what the backup adds to the catalog.
    tmpfs.free_all();
    for i in 0..4000 {
        tree.file(&format!("many/f{i}"), format!("file {i}").as_bytes());
    }
    tmpfs.fill(64 << 10);
    env.run(&["snapshot", "w"]).failed().stderr_has(NO_SPACE);
    assert!(daemon_alive(daemon.pid()), "the daemon died of a full disk");
    assert_eq!(fs::read(env.mnt().join("w/latest/a")).unwrap(), b"first");
    let jobs = env.run(&["jobs", "--json"]).ok().json();
    for job in jobs["jobs"].as_array().unwrap() {
        assert!(
            job["state"] != "running" && job["state"] != "queued",
            "a job looks unfinished: {job}"
        );
    }

    // Room again: the next job succeeds.
    tmpfs.free_all();
    let out = env.run(&["snapshot", "w", "--json"]).ok().json();
    let point = out["result"]["point"].as_str().unwrap().to_string();
    assert_eq!(
        fs::read(env.mnt().join(format!("w/{point}/many/f3999"))).unwrap(),
        b"file 3999"
    );
    env.run(&["umount", &env.mnt_str()]).ok();
    drop(daemon);
    drop(tmpfs);
}
