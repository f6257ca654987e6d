//! Source trees for tests: a builder that makes every fidelity case, and a comparison that
//! checks bytes and metadata of two trees.

use std::collections::{BTreeMap, HashMap};
use std::ffi::{CString, OsStr};
use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Deterministic pseudo-random bytes (xorshift), incompressible enough to exercise packs.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn set_times(path: &Path, atime_ns: i64, mtime_ns: i64) {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    let ts = |ns: i64| libc::timespec {
        tv_sec: ns / 1_000_000_000,
        tv_nsec: ns % 1_000_000_000,
    };
    let times = [ts(atime_ns), ts(mtime_ns)];
    let rc = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    assert_eq!(rc, 0, "utimensat {}", path.display());
}

/// Builds a directory with every case the backup must keep: nested dirs, empty dirs,
/// big and small files, modes (setuid too), owners, ns times, symlinks (dangling too),
/// hard links, sparse files, xattrs, non-UTF-8 names, a FIFO.
pub struct SourceTree {
    pub root: PathBuf,
}

impl SourceTree {
    pub fn new(root: &Path) -> SourceTree {
        fs::create_dir_all(root).unwrap();
        SourceTree {
            root: root.to_path_buf(),
        }
    }

    pub fn file(&self, rel: &str, data: &[u8]) -> PathBuf {
        let p = self.root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, data).unwrap();
        p
    }

    /// Every fidelity case, with `big` bytes in the largest file.
    pub fn all_cases(root: &Path, big: usize) -> SourceTree {
        let t = SourceTree::new(root);
        t.file("docs/readme.txt", b"hello cairn\n");
        t.file("docs/deep/a/b/c/d/e/leaf.txt", b"deep leaf");
        t.file("data/big.bin", &noise(1, big));
        t.file(
            "data/text.log",
            &b"line of text that compresses well\n".repeat(5000),
        );
        t.file("data/empty", b"");
        fs::create_dir_all(t.root.join("empty-dir/nested-empty")).unwrap();
        // modes and owners
        let exe = t.file("bin/tool", b"#!/bin/sh\necho hi\n");
        fs::set_permissions(&exe, fs::Permissions::from_mode(0o4755)).unwrap();
        let private = t.file("secret/key", b"k");
        fs::set_permissions(&private, fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::lchown(&private, Some(1234), Some(5678)).unwrap();
        fs::set_permissions(t.root.join("secret"), fs::Permissions::from_mode(0o750)).unwrap();
        // symlinks
        symlink("../docs/readme.txt", t.root.join("bin/link-to-readme")).unwrap();
        symlink("/nonexistent/target", t.root.join("dangling")).unwrap();
        std::os::unix::fs::lchown(t.root.join("dangling"), Some(42), Some(43)).unwrap();
        // hard links
        let h = t.file("links/original", b"shared by hard links");
        fs::hard_link(&h, t.root.join("links/second")).unwrap();
        fs::hard_link(&h, t.root.join("docs/third-link")).unwrap();
        // sparse: data, a 64 MiB hole, data, trailing hole
        let sp = t.root.join("data/sparse.img");
        let mut f = fs::File::create(&sp).unwrap();
        f.write_all(&noise(2, 4096)).unwrap();
        f.seek(SeekFrom::Start(64 << 20)).unwrap();
        f.write_all(b"middle").unwrap();
        f.set_len(128 << 20).unwrap();
        drop(f);
        // xattrs
        let x = t.file("attrs/with-xattr", b"x");
        xattr::set(&x, "user.cairn.test", b"value\0with nul").unwrap();
        xattr::set(&x, "user.empty", b"").unwrap();
        xattr::set(t.root.join("attrs"), "user.dir", b"on a directory").unwrap();
        // odd names
        let odd = t.root.join(OsStr::from_bytes(b"names/bad-utf8-\xff\xfe"));
        fs::create_dir_all(odd.parent().unwrap()).unwrap();
        fs::write(&odd, b"non-utf8 name").unwrap();
        t.file("names/space and 'quote' \"dq\"", b"q");
        t.file("names/newline\nname", b"n");
        t.file("names/colon:name", b"c");
        t.file("names/ünïcödé-名前", b"u");
        // a FIFO
        let fifo = CString::new(t.root.join("pipe").as_os_str().as_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o640) }, 0);
        // ns times on a file and a dir, set last
        set_times(
            &t.root.join("docs/readme.txt"),
            1_600_000_000_123_456_789,
            1_500_000_000_987_654_321,
        );
        set_times(
            &t.root.join("empty-dir"),
            1_600_000_001_000_000_001,
            1_500_000_001_000_000_002,
        );
        t
    }
}

/// What a path looks like, as far as a backup promises to keep it.
#[derive(Debug, PartialEq, Eq)]
pub struct Entry {
    pub kind: &'static str,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub mtime_ns: i64,
    pub content: Option<Vec<u8>>,
    pub target: Option<Vec<u8>>,
    pub xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Index of the first path (in sorted order) sharing this inode, for hard links.
    pub link_group: Option<usize>,
    /// Whether the file has holes (allocated less than its size).
    pub sparse: bool,
}

/// Describes every path under `root` (relative path bytes -> entry). Directory mtimes are
/// included; atime is not (reading changes it).
pub fn describe(root: &Path) -> BTreeMap<Vec<u8>, Entry> {
    let mut out = BTreeMap::new();
    let mut inodes: HashMap<(u64, u64), usize> = HashMap::new();
    let mut paths = Vec::new();
    collect(root, root, &mut paths);
    paths.sort();
    for (i, rel) in paths.iter().enumerate() {
        let p = root.join(OsStr::from_bytes(rel));
        let md = fs::symlink_metadata(&p).unwrap();
        let ft = md.file_type();
        use std::os::unix::fs::FileTypeExt;
        let kind = if ft.is_dir() {
            "dir"
        } else if ft.is_symlink() {
            "symlink"
        } else if ft.is_fifo() {
            "fifo"
        } else if ft.is_file() {
            "file"
        } else {
            "other"
        };
        let link_group = (ft.is_file() && md.nlink() > 1)
            .then(|| *inodes.entry((md.dev(), md.ino())).or_insert(i));
        let mut xattrs = BTreeMap::new();
        if let Ok(names) = xattr::list(&p) {
            for n in names {
                if let Ok(Some(v)) = xattr::get(&p, &n) {
                    xattrs.insert(n.as_bytes().to_vec(), v);
                }
            }
        }
        out.insert(
            rel.clone(),
            Entry {
                kind,
                mode: md.mode() & 0o7777,
                uid: md.uid(),
                gid: md.gid(),
                size: if ft.is_file() { md.size() } else { 0 },
                mtime_ns: if ft.is_symlink() {
                    0
                } else {
                    md.mtime() * 1_000_000_000 + md.mtime_nsec()
                },
                content: ft.is_file().then(|| fs::read(&p).unwrap()),
                target: ft
                    .is_symlink()
                    .then(|| fs::read_link(&p).unwrap().as_os_str().as_bytes().to_vec()),
                xattrs,
                link_group,
                sparse: ft.is_file() && md.blocks() * 512 + 65536 < md.size(),
            },
        );
    }
    out
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<Vec<u8>>) {
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        out.push(
            p.strip_prefix(root)
                .unwrap()
                .as_os_str()
                .as_bytes()
                .to_vec(),
        );
        if e.file_type().unwrap().is_dir() {
            collect(root, &p, out);
        }
    }
}

/// Asserts two trees are identical in bytes and metadata, naming the first difference.
pub fn assert_same_tree(expected: &Path, actual: &Path) {
    let a = describe(expected);
    let b = describe(actual);
    let a_names: Vec<_> = a
        .keys()
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect();
    let b_names: Vec<_> = b
        .keys()
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect();
    assert_eq!(a_names, b_names, "different file lists");
    for (k, ea) in &a {
        let eb = &b[k];
        assert_eq!(ea, eb, "difference at {}", String::from_utf8_lossy(k));
    }
}

/// Files `part-00.bin`.. of `count` × `each` bytes of incompressible data under `root`,
/// the n-th from seed `seed + n`; returns their total size.
pub fn noise_tree(root: &Path, count: usize, each: usize, seed: u64) -> u64 {
    let t = SourceTree::new(root);
    for i in 0..count {
        t.file(&format!("part-{i:02}.bin"), &noise(seed + i as u64, each));
    }
    (count * each) as u64
}
