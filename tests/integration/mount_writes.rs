//! What a mount refuses and how it answers (issue 10, items 14 and 15): every write-side
//! call into a point or a read-only `.cairn` file is `EROFS` (not fuser's `ENOSYS`), a
//! restore into the mount fails with that, and the documented
//! `exec 3<>ctl/x; echo … >&3; cat <&3` reads the reply, for accepted and refused
//! requests alike, while `pread` at 0 keeps working.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cairn::service::Service;

use crate::support::mount::{fuse_available, job_of, request, run, wait_job_file, MountGuard};
use crate::support::repos::TestRepo;

const LIMIT: Duration = Duration::from_secs(300);

/// A mount of a repository with instance `db` (from `work/src`) and one point of it;
/// returns the guard and the point's directory in the mount.
pub(crate) fn mounted_point(
    work: &Path,
    opts: &cairn::fs::MountOptions,
    share_control: bool,
) -> (MountGuard, PathBuf) {
    let src = work.join("src");
    std::fs::create_dir_all(src.join("private")).unwrap();
    std::fs::write(src.join("open.txt"), b"anyone may read this\n").unwrap();
    std::fs::write(src.join("secret.txt"), b"owner only\n").unwrap();
    std::fs::write(src.join("private/x"), b"in a 0700 directory\n").unwrap();
    let mode = |p: &str, m: u32| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(src.join(p), std::fs::Permissions::from_mode(m)).unwrap();
    };
    mode("open.txt", 0o644);
    mode("secret.txt", 0o600);
    mode("private", 0o700);
    mode(".", 0o755);
    let t = TestRepo::local(work);
    let service = Service::start(t.repo, t.catalog, 2).unwrap();
    let mnt = work.join("mnt");
    let guard = MountGuard::with_options(service, &mnt, LIMIT, opts, share_control);
    let ctl = mnt.join(".cairn/ctl");
    let reply = request(
        &ctl.join("instance"),
        &format!("add name=db path={}\n", src.display()),
    )
    .unwrap();
    assert!(reply.starts_with("ok"), "{reply}");
    let job = job_of(&request(&ctl.join("snapshot"), "instance=db\n").unwrap());
    let status = wait_job_file(&mnt, job, LIMIT);
    assert_eq!(status["state"], "succeeded", "{status}");
    let point = status["result"]["point"].as_str().unwrap().to_string();
    (guard, mnt.join("db").join(point))
}

fn c(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap()
}

/// The errno of a libc call's result (0 when it succeeded).
fn errno_of(rc: libc::c_int) -> i32 {
    if rc == 0 {
        0
    } else {
        std::io::Error::last_os_error().raw_os_error().unwrap_or(-1)
    }
}

fn io_errno<T>(r: std::io::Result<T>) -> i32 {
    match r {
        Ok(_) => 0,
        Err(e) => e.raw_os_error().unwrap_or(-1),
    }
}

/// Every write-side call on `file` (an existing file) and in `dir` (an existing
/// directory), by name; each must fail with EROFS.
fn write_side_calls(dir: &Path, file: &Path) -> Vec<(String, i32)> {
    let new = dir.join("cairn-new-entry");
    let (cf, cd, cn) = (c(file), c(dir), c(&new));
    let mut out: Vec<(String, i32)> = Vec::new();
    let at = format!("file {}, directory {}", file.display(), dir.display());
    let mut push = |what: &str, e: i32| out.push((format!("{what} ({at})"), e));
    push("create", io_errno(std::fs::File::create(&new)));
    push("mkdir", io_errno(std::fs::create_dir(&new)));
    push("unlink", io_errno(std::fs::remove_file(file)));
    push("rename", io_errno(std::fs::rename(file, &new)));
    push(
        "open for writing",
        io_errno(std::fs::OpenOptions::new().write(true).open(file)),
    );
    push("symlink", io_errno(std::os::unix::fs::symlink("x", &new)));
    push("link", io_errno(std::fs::hard_link(file, &new)));
    // SAFETY (all below): valid NUL-terminated paths and buffers that outlive the call.
    push(
        "truncate",
        errno_of(unsafe { libc::truncate(cf.as_ptr(), 0) }),
    );
    push(
        "chmod",
        errno_of(unsafe { libc::chmod(cf.as_ptr(), 0o777) }),
    );
    push("chown", errno_of(unsafe { libc::chown(cf.as_ptr(), 1, 1) }));
    push(
        "utimes",
        errno_of(unsafe { libc::utimensat(libc::AT_FDCWD, cf.as_ptr(), std::ptr::null(), 0) }),
    );
    push(
        "mkfifo",
        errno_of(unsafe { libc::mkfifo(cn.as_ptr(), 0o644) }),
    );
    let (name, value) = (c(Path::new("user.cairn")), b"v");
    push(
        "setxattr",
        errno_of(unsafe {
            libc::setxattr(cf.as_ptr(), name.as_ptr(), value.as_ptr().cast(), 1, 0)
        }),
    );
    push(
        "removexattr",
        errno_of(unsafe { libc::removexattr(cf.as_ptr(), name.as_ptr()) }),
    );
    push("rmdir", errno_of(unsafe { libc::rmdir(cd.as_ptr()) }));
    out
}

#[test]
fn every_write_into_a_point_or_a_read_only_control_file_is_erofs() {
    if !fuse_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (guard, point) = mounted_point(dir.path(), &Default::default(), false);
    let meta = guard.dir.join(".cairn");
    let mut calls = write_side_calls(&point, &point.join("open.txt"));
    calls.extend(write_side_calls(
        &point.join("private"),
        &point.join("private/x"),
    ));
    calls.extend(write_side_calls(&meta, &meta.join("events")));
    calls.extend(write_side_calls(&meta.join("jobs"), &meta.join("stats")));
    // A control file can be written (that is a request), but not renamed, linked,
    // chmod-ed or given xattrs; creating next to it is refused too.
    let ctl = meta.join("ctl");
    for (what, e) in write_side_calls(&ctl, &ctl.join("snapshot")) {
        if !what.starts_with("open for writing") && !what.starts_with("truncate") {
            calls.push((what, e));
        }
    }
    let wrong: Vec<String> = calls
        .iter()
        .filter(|(_, e)| *e != libc::EROFS)
        .map(|(what, e)| format!("{what}: {}", std::io::Error::from_raw_os_error(*e)))
        .collect();
    assert!(wrong.is_empty(), "not EROFS:\n{}", wrong.join("\n"));
    assert!(calls.len() >= 70, "{} calls tried", calls.len());
    // Nothing changed.
    assert_eq!(
        std::fs::read(point.join("open.txt")).unwrap(),
        b"anyone may read this\n"
    );
}

#[test]
fn a_restore_into_the_mount_fails_as_read_only() {
    if !fuse_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (guard, point) = mounted_point(dir.path(), &Default::default(), false);
    let point_name = point.file_name().unwrap().to_str().unwrap().to_string();
    for target in [guard.dir.join("db/restored"), point.join("restored")] {
        let job = job_of(
            &request(
                &guard.dir.join(".cairn/ctl/restore"),
                &format!(
                    "instance=db point={point_name} target={}\n",
                    target.display()
                ),
            )
            .unwrap(),
        );
        let status = wait_job_file(&guard.dir, job, LIMIT);
        assert_eq!(status["state"], "failed", "{status}");
        let error = status["error"].to_string();
        assert!(error.contains("Read-only file system"), "{status}");
        assert!(!error.contains("not implemented"), "{status}");
    }
}

#[test]
fn the_documented_reply_read_works_for_accepted_and_refused_requests() {
    if !fuse_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (guard, _point) = mounted_point(dir.path(), &Default::default(), false);
    let ctl = guard.dir.join(".cairn/ctl/snapshot");
    let shell = |script: &str| {
        let script = script.replace("CTL", &ctl.display().to_string());
        let (_, out, _) = run(60, "bash", &["-c", &script]);
        out
    };
    // As docs/CONTROL.md spells it.
    let out = shell("exec 3<>CTL; echo 'instance=db' >&3; cat <&3");
    let job = job_of(&out);
    // A refused request: echo fails, its reply is readable the same way.
    let out = shell("exec 3<>CTL; echo 'instance=nope' >&3; cat <&3");
    assert!(out.starts_with("error: "), "{out:?}");
    assert!(out.contains("nope"), "{out:?}");
    // Two requests through one handle: each reply after its request.
    let out = shell(
        "exec 3<>CTL; echo 'instance=db' >&3; cat <&3; echo 'instance=nope' >&3; cat <&3; \
         echo 'instance=db' >&3; cat <&3",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out:?}");
    assert!(
        lines[0].starts_with("job=") && lines[2].starts_with("job="),
        "{out:?}"
    );
    assert!(lines[1].starts_with("error: "), "{out:?}");
    // pread at 0 (what the CLI and tests/support do) still works.
    let reply = request(&ctl, "instance=db\n").unwrap();
    assert!(job_of(&reply) > job, "{reply}");
    let (errno, reply) = request(&ctl, "instance=nope\n").unwrap_err();
    assert_eq!(errno, libc::ENOENT);
    assert!(reply.starts_with("error: "), "{reply}");
}
