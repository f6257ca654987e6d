//! Fuzzing of every decoder of untrusted bytes (issue 10): trees, manifests, forget
//! records, instance definitions, policies, pack headers, parity objects, index
//! segments, blobs, prune plans, `config`, key files, control requests, and the object
//! keys a listing returns.
//!
//! Each target gets random bytes and real encodings with edits (bit flips, truncations,
//! forged length fields: see `mutate.rs`), and must never panic, never hold more than a
//! small multiple of its input in memory (measured by the allocator in `alloc.rs`), and
//! return either a typed error or a value that re-encodes to itself.
//!
//! A separate test binary: the measuring allocator is global, and must not slow the
//! integration suite. `CAIRN_FUZZ_CASES=100000 cargo test --release --test fuzz_decoders`
//! runs a deeper campaign. Inputs that ever failed, and hand-made hostile ones (deep JSON
//! nesting, a zstd bomb), are kept in
//! `tests/fixtures/fuzz-regressions/<target>/` and replayed by `kept_regressions_pass`.

mod alloc;
mod model_targets;
mod mutate;
mod repo_targets;

use proptest::proptest;

#[global_allocator]
static ALLOCATOR: alloc::Counting = alloc::Counting;

/// What a decoder may hold at once: a fixed allowance (zstd contexts, error messages)
/// plus a multiple of its input.
fn budget(input_len: usize) -> usize {
    (16 << 20) + 64 * input_len
}

/// Runs a decoder on `input` and checks what it allocated.
pub fn bounded<T>(input: &[u8], decode: impl FnOnce() -> T) -> T {
    let (out, peak) = alloc::measure(input, decode);
    assert!(
        peak <= budget(input.len()),
        "decoding {} bytes held {peak} bytes at once",
        input.len()
    );
    out
}

/// A target's check: asserts the properties, and says whether the input was accepted.
type Check = fn(&[u8]) -> bool;
type Seeds = fn() -> Vec<Vec<u8>>;

/// Every target: its name (the regression directory), its check and its seeds.
const TARGETS: &[(&str, Check, Seeds)] = &[
    ("tree", model_targets::check_tree, model_targets::tree_seeds),
    (
        "manifest",
        model_targets::check_manifest,
        model_targets::manifest_seeds,
    ),
    (
        "forget-record",
        model_targets::check_forget_record,
        model_targets::forget_seeds,
    ),
    (
        "instance",
        model_targets::check_instance,
        model_targets::instance_seeds,
    ),
    (
        "policy",
        model_targets::check_policy,
        model_targets::policy_seeds,
    ),
    (
        "control",
        model_targets::check_control,
        model_targets::control_seeds,
    ),
    (
        "object-key",
        model_targets::check_object_key,
        model_targets::object_key_seeds,
    ),
    ("pack", repo_targets::check_pack, repo_targets::pack_seeds),
    (
        "parity",
        repo_targets::check_parity,
        repo_targets::parity_seeds,
    ),
    (
        "index",
        repo_targets::check_index,
        repo_targets::index_seeds,
    ),
    (
        "index-body",
        repo_targets::check_index_body,
        repo_targets::index_body_seeds,
    ),
    ("blob", repo_targets::check_blob, repo_targets::blob_seeds),
    (
        "prune-plan",
        repo_targets::check_prune_plan,
        repo_targets::prune_plan_seeds,
    ),
    (
        "config",
        repo_targets::check_config,
        repo_targets::config_seeds,
    ),
    (
        "key-file",
        repo_targets::check_key_file,
        repo_targets::key_file_seeds,
    ),
];

fn target(name: &str) -> (Check, Seeds) {
    let (_, check, seeds) = TARGETS
        .iter()
        .find(|(n, _, _)| *n == name)
        .unwrap_or_else(|| panic!("no fuzz target {name}"));
    (*check, *seeds)
}

macro_rules! fuzz {
    ($($test:ident => $name:literal),* $(,)?) => {
        $(
            proptest! {
                #![proptest_config(mutate::config())]
                #[test]
                fn $test(input in mutate::inputs((target($name).1)())) {
                    let _accepted = (target($name).0)(&input);
                }
            }
        )*
    };
}

fuzz! {
    tree_decoder => "tree",
    manifest_decoder => "manifest",
    forget_record_decoder => "forget-record",
    instance_decoder => "instance",
    policy_decoder => "policy",
    control_parsers => "control",
    object_key_parsers => "object-key",
    pack_decoder => "pack",
    parity_decoder => "parity",
    index_decoder => "index",
    index_record_decoder => "index-body",
    blob_decoder => "blob",
    prune_plan_decoder => "prune-plan",
    config_decoder => "config",
    key_file_decoder => "key-file",
}

/// The seeds themselves decode (else the mutated inputs would test nothing deep).
#[test]
fn seeds_are_valid_encodings() {
    for (name, check, seeds) in TARGETS {
        let seeds = seeds();
        assert!(!seeds.is_empty(), "{name} has no seeds");
        for (i, s) in seeds.iter().enumerate() {
            assert!(check(s), "seed {i} of {name} is refused");
        }
    }
}

/// Every input kept under `tests/fixtures/fuzz-regressions/<target>/` still passes.
#[test]
fn kept_regressions_pass() {
    let root =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fuzz-regressions");
    let (mut replayed, mut failed) = (0, Vec::new());
    for dir in std::fs::read_dir(&root).unwrap() {
        let dir = dir.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let (check, _) = target(&name);
        for file in std::fs::read_dir(&dir).unwrap() {
            let file = file.unwrap().path();
            eprintln!("replaying {}", file.display());
            let input = std::fs::read(&file).unwrap();
            if std::panic::catch_unwind(|| check(&input)).is_err() {
                failed.push(file.display().to_string());
            }
            replayed += 1;
        }
    }
    assert!(
        replayed > 0,
        "no regression inputs under {}",
        root.display()
    );
    assert!(
        failed.is_empty(),
        "kept inputs that fail again: {failed:#?}"
    );
}
