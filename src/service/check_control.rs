//! `ctl/check`: `instance=NAME [point=P] [against=/abs] [threads=N] [ignore=GLOB]..
//! [checksum=true|false] [bandwidth=MB]`, or `instance=NAME point=A other=B` for two
//! points; each value checked before the job is queued.

use crate::engine::check::MAX_THREADS;

use super::grammar::{
    absolute, boolean, globs, instance_name, no_verb, parse_words, point_ref, ControlError, Fields,
    Result,
};
use super::requests::CheckControl;

pub fn parse_check(text: &str) -> Result<CheckControl> {
    let words = parse_words(text)?;
    no_verb(&words, "check")?;
    let mut f = Fields::new(words);
    let instance = instance_name(f.required("instance")?)?;
    let point = point_ref(f.optional("point")?.unwrap_or_else(|| "latest".into()))?;
    let other = f.optional("other")?.map(point_ref).transpose()?;
    let against = f
        .optional("against")?
        .map(|p| absolute("against", p))
        .transpose()?;
    let threads = f
        .optional("threads")?
        .map(|t| {
            t.parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_THREADS).contains(n))
                .ok_or_else(|| {
                    ControlError::invalid(format!("threads must be 1 to {MAX_THREADS}, got `{t}`"))
                })
        })
        .transpose()?;
    let ignores = globs("ignore", f.all("ignore"))?;
    let checksum = match f.optional("checksum")? {
        None => true,
        v => boolean("checksum", v)?,
    };
    let bandwidth = f
        .optional("bandwidth")?
        .map(|b| {
            b.parse::<u64>().ok().filter(|n| *n > 0).ok_or_else(|| {
                ControlError::invalid(format!(
                    "bandwidth must be whole MB per second (1 or more), got `{b}`"
                ))
            })
        })
        .transpose()?;
    f.finish("instance, point, other, against, threads, ignore, checksum, bandwidth")?;
    let live_keys = against.is_some()
        || threads.is_some()
        || !ignores.is_empty()
        || !checksum
        || bandwidth.is_some();
    if other.is_some() && live_keys {
        return Err(ControlError::invalid(
            "`other=` compares two points: against=, threads=, ignore=, checksum= and \
             bandwidth= apply to a check of the live data only",
        ));
    }
    Ok(CheckControl {
        instance,
        point,
        other,
        against,
        threads,
        ignores,
        checksum,
        bandwidth,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_parses_and_defaults_hold() {
        let c = parse_check("instance=www").unwrap();
        assert_eq!((c.point.as_str(), c.checksum), ("latest", true));
        assert_eq!((c.threads, c.bandwidth, c.other), (None, None, None));
        let c = parse_check(
            "instance=www point=latest against=/srv/x threads=4 ignore=*.tmp ignore=cache \
             checksum=false bandwidth=20",
        )
        .unwrap();
        assert_eq!(c.against.as_deref(), Some(std::path::Path::new("/srv/x")));
        assert_eq!(c.threads, Some(4));
        assert_eq!(c.ignores, vec!["*.tmp".to_string(), "cache".to_string()]);
        assert!(!c.checksum);
        assert_eq!(c.bandwidth, Some(20));
        let d = parse_check("instance=www point=latest other=latest").unwrap();
        assert_eq!(d.other.as_deref(), Some("latest"));
    }

    #[test]
    fn bad_values_are_refused() {
        for bad in [
            "point=latest",
            "instance=www threads=0",
            "instance=www threads=17",
            "instance=www against=rel/path",
            "instance=www checksum=maybe",
            "instance=www bandwidth=0",
            "instance=www ignore=[",
            "instance=www other=latest threads=2",
            "instance=www colour=red",
        ] {
            assert!(parse_check(bad).is_err(), "{bad}");
        }
    }
}
